package protocol

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
)

// Machine is one transaction as its coordinator runs it: presumed-abort
// two-phase commit with parallel commits. It does no I/O and reads no
// clock: events go in through Step, and what to do comes out as a Ready
// (see Ready for the order in which a driver must do it). A machine is
// not safe for concurrent use; the driver steps it under a lock.
type Machine struct {
	id    string
	parts []string // shared, never modified
	keys  []string // shared, never modified
	all   mask

	state   State
	client  bool     // a client waits for the reply (not a recovered transaction)
	round   MsgKind  // the calls out now (out) are of this kind
	durable durables // records of this transaction known durable
	vote    *Vote    // the first YES or read-only vote; the others must agree
	voted   mask     // Preparing: votes in
	held    mask     // Resolving: participants holding it prepared
	out     mask     // calls of the current round without an answer yet
	acked   mask     // participants that applied the decision
	// gone are participants excluded from the write set (their exclusion
	// durable): no vote, acknowledgement or answer is awaited from them,
	// and they are sent nothing more. They catch up from a snapshot.
	gone    mask
	asked   bool // someone waits for an answer to their question
	replied bool
	freed   bool // keys released
}

// mask is a set of participants, by index in parts.
type mask uint64

// MaxParticipants bounds a transaction's participants (a mask's bits).
const MaxParticipants = 64

// Start begins transaction id, which may write keys, over participants:
// STAGED is queued and the prepares go out at once, in parallel (the
// client then waits for one round of fsyncs, not two). STAGED is needed
// durable only once every vote is in, so it is queued lazily: its fsync
// may wait to share those of other transactions starting meanwhile (a
// driver may end the wait as the prepares leave), and decide asks for
// it (Ready.Flush) if the votes come first. The caller holds the
// transaction's keys.
func Start(id string, participants, keys []string) (*Machine, Ready) {
	m := newMachine(id, participants, keys, Preparing)
	m.client = true
	m.round, m.out = MsgPrepare, m.all
	return m, m.ready(Ready{
		Records:  []Record{m.record(KindStaged)},
		Lazy:     true,
		Messages: m.send(MsgPrepare, m.all),
	})
}

// Recover rebuilds a transaction from a record the log holds without an
// outcome: a COMMIT is told to every participant again (commit is
// idempotent); a STAGED is resolved by asking the participants. Those in
// excluded (the log's durable exclusions) are left out, as EvExcluded
// would.
func Recover(rec Record, excluded []string) (*Machine, Ready) {
	var m *Machine
	switch rec.Kind {
	case KindCommit:
		m = newMachine(rec.TxID, rec.Participants, rec.Keys, Committed)
		m.durable.set(KindStaged)
		m.durable.set(KindCommit)
		m.round = MsgCommit
	case KindStaged:
		m = newMachine(rec.TxID, rec.Participants, rec.Keys, Resolving)
		m.durable.set(KindStaged)
		m.round = MsgAskHeld
	default:
		panic(fmt.Sprintf("protocol: Recover: a %s record has no transaction to finish", rec.Kind))
	}
	for _, name := range excluded {
		if p := m.index(name); p >= 0 {
			m.gone |= 1 << p
		}
	}
	m.out = m.needed()
	if m.out == 0 { // every participant excluded: nobody to tell or ask
		from := m.state
		rd := m.roundDone()
		rd.From, rd.To = from, m.state
		return m, m.ready(rd)
	}
	if m.state == Resolving {
		return m, m.ready(Ready{Messages: m.send(MsgAskHeld, m.out)})
	}
	return m, m.ready(Ready{Messages: m.send(MsgCommit, m.out)})
}

// needed are the participants still in the write set.
func (m *Machine) needed() mask { return m.all &^ m.gone }

func newMachine(id string, participants, keys []string, s State) *Machine {
	if len(participants) == 0 || len(participants) > MaxParticipants {
		panic(fmt.Sprintf("protocol: %d participants (want 1 to %d)", len(participants), MaxParticipants))
	}
	return &Machine{
		id: id, parts: participants, keys: keys, all: mask(1)<<len(participants) - 1,
		state: s,
	}
}

// Clone returns an independent copy (the explorer branches on it).
func (m *Machine) Clone() *Machine {
	c := *m
	return &c
}

func (m *Machine) ID() string             { return m.id }
func (m *Machine) State() State           { return m.state }
func (m *Machine) Keys() []string         { return m.keys }
func (m *Machine) Participants() []string { return m.parts }

// Step applies one event and returns what to do about it. Events that no
// longer matter (a vote after the decision, an answer to a call of an
// earlier round) are ignored.
func (m *Machine) Step(ev Event) Ready {
	from := m.state
	rd := m.step(ev)
	rd.From, rd.To = from, m.state
	return m.ready(rd)
}

func (m *Machine) step(ev Event) Ready {
	if m.state == Finished || m.state == Failed {
		return Ready{}
	}
	p := m.index(ev.From)
	switch ev.Kind {
	case EvLogFailed:
		if !slices.Contains(legalMoves[m.state], Failed) {
			return Ready{} // it was writing nothing
		}
		return m.fail(ev.Err)
	case EvDurable:
		m.durable.set(ev.Record)
		return m.onDurable(ev.Record)
	case EvAsked:
		return m.onAsked(ev.From)
	case EvVote:
		if m.state == Preparing && m.round == MsgPrepare && m.out.has(p) {
			m.out = m.out.without(p)
			return m.onVote(p, &ev.Vote)
		}
	case EvCallFailed:
		if ev.Msg != m.round || !m.out.has(p) {
			return Ready{}
		}
		m.out = m.out.without(p)
		switch m.state {
		case Preparing:
			return m.abort(CauseUnavailable, fmt.Sprintf("%s did not vote: %s", ev.From, ev.Err))
		case Committing, Committed, Aborting, Aborted, Resolving:
			return m.roundDone()
		}
	case EvAcked:
		if ev.Msg == m.round && m.out.has(p) {
			m.out = m.out.without(p)
			m.acked |= 1 << p
			return m.roundDone()
		}
	case EvHeld:
		if m.state != Resolving || m.round != MsgAskHeld || !m.out.has(p) {
			return Ready{}
		}
		m.out = m.out.without(p)
		if !ev.Held {
			// It never voted YES: it forgets a prepared transaction only
			// when told the outcome, and commit is told only after a
			// COMMIT record, which this one lacks. So no client heard
			// success, and the abort's tombstone refuses a prepare still
			// on its way.
			return m.abort(CauseUnavailable, ev.From+" does not hold it prepared")
		}
		m.held |= 1 << p
		return m.roundDone()
	case EvRetry:
		return m.retry()
	case EvExcluded:
		return m.onExcluded(p)
	}
	return Ready{}
}

// onExcluded takes participant p out of what the transaction waits for:
// its exclusion is durable, so the transaction may commit without its
// vote (the write set no longer has it) and finish without its
// acknowledgement (it will catch up from a snapshot).
func (m *Machine) onExcluded(p int) Ready {
	if p < 0 || m.gone.has(p) {
		return Ready{}
	}
	m.gone |= 1 << p
	wasOut := m.out.has(p)
	m.out = m.out.without(p)
	switch m.state {
	case Preparing:
		return m.decide()
	case Committed, Aborted, Resolving:
		if wasOut {
			return m.roundDone()
		}
		if m.state == Committed && m.out == 0 && m.acked|m.gone == m.all {
			return m.roundDone() // the retry waited only for p
		}
		if m.state == Resolving && m.out == 0 && m.held|m.gone == m.all {
			return m.roundDone()
		}
	}
	return Ready{}
}

// onVote takes the vote of participant p while preparing.
func (m *Machine) onVote(p int, v *Vote) Ready {
	m.voted |= 1 << p
	switch {
	case v.Kind == VoteNo && v.Conflict:
		return m.abort(CauseConflict, fmt.Sprintf("%s: %s", m.parts[p], v.Reason))
	case v.Kind == VoteNo && v.TooLarge:
		return m.abort(CauseTooLarge, v.Reason)
	case v.Kind == VoteNo:
		return m.abort(CauseUnavailable, fmt.Sprintf("%s refused: %s", m.parts[p], v.Reason))
	case m.vote == nil:
		// A copy, so that v (the event's, on its caller's stack) does not
		// escape: otherwise every event of every step is on the heap.
		first := *v
		m.vote = &first
	case !m.vote.agrees(v):
		return m.abort(CauseDiverged, fmt.Sprintf("replicas disagree: %s gave %s", m.parts[p], v.describe()))
	}
	return m.decide()
}

// decide commits once every vote is in and STAGED is durable: from that
// moment recovery would commit it too, so the client may hear success.
// A transaction whose votes all say read-only is finished at once: no
// participant holds anything, and its reply depends on no record.
func (m *Machine) decide() Ready {
	if m.voted|m.gone != m.all || m.vote == nil {
		return Ready{}
	}
	if m.vote.Kind == VoteReadOnly {
		m.become(Finished)
		return Ready{
			Records: []Record{{Kind: KindEnd, TxID: m.id}}, // STAGED needs nothing more
			Reply:   m.committedReply(), Release: m.release(),
		}
	}
	if !m.durable.has(KindStaged) {
		return Ready{Flush: true} // every vote is in: STAGED may linger no more
	}
	m.become(Committing)
	// The client hears now; the COMMIT record follows and its fsync may
	// wait to share another's. Commits go out once it is durable.
	return Ready{Reply: m.committedReply(), Records: []Record{m.record(KindCommit)}, Lazy: true}
}

func (m *Machine) committedReply() *Reply {
	m.replied = true
	return &Reply{Kind: ReplyCommitted, Succeeded: m.vote.Succeeded, Results: m.vote.Results,
		ReadOnly: m.vote.Kind == VoteReadOnly}
}

// abort decides abort: the ABORT record, then (once it is durable) the
// aborts, the client's reply and the answers to questions.
func (m *Machine) abort(cause Cause, reason string) Ready {
	m.become(Aborting)
	m.round, m.out, m.acked = MsgAbort, m.needed(), 0
	rd := Ready{Records: []Record{{Kind: KindAbort, TxID: m.id}}, Messages: m.send(MsgAbort, m.out), Answer: m.answer(false)}
	if m.client && !m.replied {
		m.replied = true
		rd.Reply = &Reply{Kind: ReplyAborted, Cause: cause, Reason: reason}
	}
	return rd
}

// onDurable moves on once a record the machine was waiting for is
// durable.
func (m *Machine) onDurable(k Kind) Ready {
	switch {
	case m.state == Preparing && k == KindStaged:
		return m.decide()
	case m.state == Committing && k == KindCommit:
		m.become(Committed)
		rd := Ready{Answer: m.answer(true)}
		if m.round != MsgCommit { // decided while preparing: commits not sent yet
			m.round, m.out = MsgCommit, m.needed()
			rd.Messages = m.send(MsgCommit, m.out)
		}
		return rd
	case m.state == Aborting && k == KindAbort:
		m.become(Aborted)
		rd := Ready{Answer: m.answer(false)}
		if m.out == 0 { // every abort already answered
			rd2 := m.roundDone()
			rd2.Answer = rd.Answer
			return rd2
		}
		return rd
	}
	return Ready{}
}

// onAsked takes a question about the outcome: it is answered as soon as
// the outcome is durable. A participant asking while the transaction is
// still being prepared has given up waiting: that decides abort.
func (m *Machine) onAsked(who string) Ready {
	m.asked = true
	switch m.state {
	case Preparing:
		if who == "" {
			who = "a participant"
		}
		return m.abort(CauseUnavailable, who+" gave up waiting for the decision")
	case Committed:
		return Ready{Answer: m.answer(true)}
	case Aborted:
		return Ready{Answer: m.answer(false)}
	}
	return Ready{} // Committing, Aborting, Resolving: wait for the record
}

// answer answers the questions waiting, if any.
func (m *Machine) answer(commit bool) Answer {
	if !m.asked {
		return NoAnswer
	}
	m.asked = false
	if commit {
		return AnswerCommit
	}
	return AnswerAbort
}

// roundDone is called when a call of the current round got its answer:
// once none is left out, the round's result decides what comes next.
func (m *Machine) roundDone() Ready {
	if m.out != 0 {
		return Ready{}
	}
	switch m.state {
	case Committed:
		if m.acked|m.gone == m.all {
			m.become(Finished)
			return Ready{Records: []Record{{Kind: KindEnd, TxID: m.id}}, Release: m.release()}
		}
		return Ready{Retry: true, Release: m.release()}
	case Aborted:
		// Aborts are told once: a participant that missed one asks.
		m.become(Finished)
		return Ready{Release: m.release()}
	case Resolving:
		if m.held|m.gone == m.all {
			// Every vote of the write set was YES, and aborts are logged
			// before anyone hears of them: nobody was told abort, and the
			// client may have been told success. It commits.
			m.become(Committing)
			m.round, m.out = MsgCommit, m.needed()
			return Ready{Records: []Record{m.record(KindCommit)}, Messages: m.send(MsgCommit, m.out), Answer: m.answer(true)}
		}
		return Ready{Retry: true}
	}
	return Ready{} // Committing, Aborting: the round ends after the record
}

// retry makes the failed calls of the last round again.
func (m *Machine) retry() Ready {
	if m.out != 0 {
		return Ready{}
	}
	switch m.state {
	case Committed:
		m.out = m.needed() &^ m.acked
		return Ready{Messages: m.send(MsgCommit, m.out)}
	case Resolving:
		m.out = m.needed() &^ m.held
		return Ready{Messages: m.send(MsgAskHeld, m.out)}
	}
	return Ready{}
}

// fail: the decision log failed, so whatever was being logged may or may
// not be on disk. Only recovery can tell; the client hears so.
func (m *Machine) fail(reason string) Ready {
	// An abort's reply waits for ABORT to be durable: if the log failed
	// first, the client never heard it.
	unheard := !m.replied || (m.state == Aborting && !m.durable.has(KindAbort))
	m.become(Failed)
	rd := Ready{Release: m.release()}
	if m.client && unheard {
		m.replied = true
		rd.Reply = &Reply{Kind: ReplyUnknown, Reason: reason}
	}
	return rd
}

func (m *Machine) release() bool {
	if m.freed {
		return false
	}
	m.freed = true
	return true
}

// become changes state, refusing a move the protocol does not have.
func (m *Machine) become(to State) {
	if !slices.Contains(legalMoves[m.state], to) {
		panic(fmt.Sprintf("protocol: %s: illegal move %s -> %s", m.id, m.state, to))
	}
	m.state = to
}

// durables are the kinds of a transaction's records known durable. A
// map of them was two allocations a transaction.
type durables struct{ staged, commit, abort bool }

func (d *durables) at(k Kind) *bool {
	switch k {
	case KindStaged:
		return &d.staged
	case KindCommit:
		return &d.commit
	case KindAbort:
		return &d.abort
	}
	return nil
}

func (d *durables) has(k Kind) bool { p := d.at(k); return p != nil && *p }

// set records that k is durable (kinds a transaction does not wait for
// are not kept).
func (d *durables) set(k Kind) {
	if p := d.at(k); p != nil {
		*p = true
	}
}

func (m *Machine) record(k Kind) Record {
	return Record{Kind: k, TxID: m.id, Participants: m.parts, Keys: m.keys}
}

func (m *Machine) send(k MsgKind, to mask) []Message {
	if to&m.all == 0 {
		return nil
	}
	ms := make([]Message, 0, bits.OnesCount64(uint64(to&m.all)))
	for p := range m.parts {
		if to.has(p) {
			ms = append(ms, Message{To: m.parts[p], Kind: k})
		}
	}
	return ms
}

func (m *Machine) index(name string) int {
	return slices.Index(m.parts, name)
}

func (s mask) has(p int) bool     { return p >= 0 && s&(1<<p) != 0 }
func (s mask) without(p int) mask { return s &^ (1 << p) }
func (v *Vote) describe() string {
	return fmt.Sprintf("succeeded=%v results=%v", v.Succeeded, v.Results)
}

// ready completes a step's Ready and enforces the protocol's rules on
// what may be heard when. They are written here and nowhere else:
//
//   - a participant hears commit (a message or an answer) only once
//     COMMIT is durable: one that applied a commit forgets it held the
//     transaction, and recovery must not take that for a missing vote;
//   - nobody (client or participant) hears abort before ABORT is durable:
//     recovery, finding every vote and STAGED, would commit it otherwise;
//   - the client hears success only once every participant has voted
//     YES and STAGED is durable (recovery would then commit it too), or
//     every vote was read-only (nothing to commit).
//
// An effect that needs a record of this same Ready makes the driver wait
// for it (Wait). One that needs a record neither durable nor in this
// Ready would break the protocol: that is a bug in the machine, and it
// panics rather than let it happen.
func (m *Machine) ready(rd Ready) Ready {
	// need: what (to, if any) needs k durable. The text is made only for
	// a panic: made for every commit sent, it was an allocation each.
	need := func(k Kind, what, to string) {
		switch {
		case m.durable.has(k):
		case slices.ContainsFunc(rd.Records, func(r Record) bool { return r.Kind == k }):
			rd.Wait = true
		default:
			panic(fmt.Sprintf("protocol: %s: %s%s before %s is durable (state %s)", m.id, what, to, k, m.state))
		}
	}
	for _, msg := range rd.Messages {
		switch msg.Kind {
		case MsgCommit:
			need(KindCommit, "commit sent to ", msg.To)
		case MsgAbort:
			need(KindAbort, "abort sent to ", msg.To)
		}
	}
	switch rd.Answer {
	case AnswerCommit:
		need(KindCommit, "commit answered", "")
	case AnswerAbort:
		need(KindAbort, "abort answered", "")
	}
	if r := rd.Reply; r != nil {
		switch {
		case r.Kind == ReplyAborted:
			need(KindAbort, "abort replied", "")
		case r.Kind == ReplyCommitted && m.vote.Kind != VoteReadOnly && (m.voted|m.gone != m.all || !m.durable.has(KindStaged)):
			panic(fmt.Sprintf("protocol: %s: success replied before every vote and STAGED are durable", m.id))
		}
	}
	return rd
}

// String describes everything the machine remembers, so that two machines
// with the same description behave the same from here on.
func (m *Machine) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s round=%s", m.id, m.state, m.round)
	for _, k := range []Kind{KindStaged, KindCommit, KindAbort} {
		if m.durable.has(k) {
			fmt.Fprintf(&b, " durable:%s", k)
		}
	}
	if m.vote != nil {
		fmt.Fprintf(&b, " vote=%d:%s", m.vote.Kind, m.vote.describe())
	}
	fmt.Fprintf(&b, " voted=%b held=%b out=%b acked=%b gone=%b asked=%v client=%v replied=%v freed=%v",
		m.voted, m.held, m.out, m.acked, m.gone, m.asked, m.client, m.replied, m.freed)
	return b.String()
}

// AppendKey appends a compact encoding of what String describes but for
// what the machine knows of each participant (AppendParticipantKey), for
// tools (the explorer) that compare millions of states and treat
// participants as interchangeable. It leaves out the vote's results: a
// machine compares them only with later votes.
func (m *Machine) AppendKey(b []byte) []byte {
	flags := byte(0)
	for i, on := range []bool{m.durable.staged, m.durable.commit, m.durable.abort, m.vote != nil, m.client, m.replied, m.freed, m.asked} {
		if on {
			flags |= 1 << i
		}
	}
	b = append(b, m.id...)
	b = append(b, 0, byte(m.state), byte(m.round), flags)
	if m.vote != nil {
		b = append(b, byte(m.vote.Kind))
		if m.vote.Succeeded {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	return b
}

// AppendParticipantKey appends what the machine knows of participant
// name: whether it is one of its participants, voted, holds the
// transaction, has a call out, acknowledged, is excluded.
func (m *Machine) AppendParticipantKey(b []byte, name string) []byte {
	p := m.index(name)
	if p < 0 {
		return append(b, 0x80)
	}
	bits := byte(0)
	for i, s := range []mask{m.voted, m.held, m.out, m.acked, m.gone} {
		if s.has(p) {
			bits |= 1 << i
		}
	}
	return append(b, bits)
}
