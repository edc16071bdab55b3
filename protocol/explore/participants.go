package explore

import (
	"github.com/twopc/twopc/protocol"
	"github.com/twopc/twopc/txlog"
)

// replay is recovery's reading of the log: txlog's own rules.
func replay(recs []protocol.Record) (*txlog.State, error) {
	return txlog.Replay(recs)
}

// serve has participant m.p act on a call or an answer, as
// participant.Store does, and returns its answer (nil for none).
func (w *world) serve(m msg) (*msg, error) {
	p := &w.parts[m.p]
	bit := uint8(1) << m.tx
	reply := msg{toCoord: true, p: m.p, tx: m.tx, kind: m.kind, epoch: m.epoch}
	if m.question { // the answer to p's question
		p.asking &^= bit
		if p.prepared&bit == 0 {
			// Resolved meanwhile (a commit or abort arrived first): the
			// answer changes nothing. A presumed abort answered after the
			// coordinator forgot a transaction every participant applied
			// lands here.
			return nil, nil
		}
		// An excluded participant is outside the guarantee: it may hear a
		// presumed abort of what the others committed without it, and it
		// catches up from a snapshot before it serves again.
		if w.excluded&(1<<m.p) == 0 {
			if err := w.hear(m.tx, m.commit); err != nil {
				return nil, err
			}
		}
		if m.commit {
			return nil, w.commitAt(m.p, m.tx)
		}
		return nil, w.abortAt(m.p, m.tx)
	}
	switch m.kind {
	case protocol.MsgPrepare:
		switch {
		case p.tomb&bit != 0:
			reply.vote = protocol.Vote{Kind: protocol.VoteNo, Reason: "already aborted"}
		case p.fence&bit != 0:
			reply.vote = protocol.Vote{Kind: protocol.VoteNo, Reason: "sent before this participant caught up"}
		case p.prepared&bit != 0 || p.applied&bit != 0:
			reply.vote = protocol.Vote{Kind: protocol.VoteYes, Succeeded: true}
		case w.lockedByOther(m.p, m.tx):
			reply.vote = protocol.Vote{Kind: protocol.VoteNo, Conflict: true, Reason: "locked"}
		default:
			p.prepared |= bit
			for _, k := range w.cfg.Txns[m.tx] {
				p.lock[k] = m.tx
			}
			reply.vote = protocol.Vote{Kind: protocol.VoteYes, Succeeded: true}
		}
	case protocol.MsgCommit:
		if err := w.commitAt(m.p, m.tx); err != nil {
			return nil, err
		}
	case protocol.MsgAbort:
		if err := w.abortAt(m.p, m.tx); err != nil {
			return nil, err
		}
	case protocol.MsgAskHeld:
		reply.held = p.prepared&bit != 0
	}
	return &reply, nil
}

func (w *world) lockedByOther(p, t int) bool {
	for _, k := range w.cfg.Txns[t] {
		if h, ok := w.parts[p].lock[k]; ok && h != t {
			return true
		}
	}
	return false
}

// commitAt applies t at p: idempotent; never for what p did not prepare
// or aborted.
func (w *world) commitAt(p, t int) error {
	pt := &w.parts[p]
	bit := uint8(1) << t
	switch {
	case pt.prepared&bit != 0 && pt.copied&bit != 0:
		return violated("%s applied twice at p%d: in the copy it caught up from, and again by a prepare sent before", w.tx[t].id, p+1)
	case pt.prepared&bit != 0:
		pt.prepared &^= bit
		pt.applied |= bit
		w.unlockAt(p, t)
	case pt.applied&bit != 0:
	case pt.covered&bit != 0 && pt.prepared&bit == 0:
		// Sent before p caught up; the copy stands for it, and p no
		// longer knows it: a no-op, as participant.Store makes it.
	case pt.tomb&bit != 0 && w.excluded&(1<<p) != 0:
		// Outside the guarantee: an excluded participant may have heard a
		// presumed abort of what the others committed (serve).
	case pt.tomb&bit != 0:
		return violated("atomicity: %s committed at p%d, which aborted it", w.tx[t].id, p+1)
	default:
		return violated("atomicity: %s committed at p%d, which never voted YES", w.tx[t].id, p+1)
	}
	return nil
}

// abortAt drops t at p and leaves a tombstone; an abort of what p applied
// breaks atomicity.
func (w *world) abortAt(p, t int) error {
	pt := &w.parts[p]
	bit := uint8(1) << t
	if (pt.applied|pt.copied)&bit != 0 && w.excluded&(1<<p) == 0 {
		return violated("atomicity: %s aborted at p%d, which applied it", w.tx[t].id, p+1)
	}
	pt.tomb |= bit
	if pt.prepared&bit != 0 {
		pt.dropped |= bit
		pt.prepared &^= bit
		w.unlockAt(p, t)
	}
	return nil
}

func (w *world) unlockAt(p, t int) {
	for k, h := range w.parts[p].lock {
		if h == t {
			delete(w.parts[p].lock, k)
		}
	}
}

// receive has the coordinator take a message addressed to it.
func (w *world) receive(m msg) error {
	t := m.tx
	mach := w.tx[t].m
	if m.question {
		w.parts[m.p].asking &^= 1 << t
		if mach == nil || mach.ID() != w.tx[t].id {
			// Unknown to this coordinator: never committed (presumed abort).
			return w.answer(m.p, t, false, false)
		}
		w.tx[t].waiting |= 1 << m.p
		return w.step(t, protocol.Event{Kind: protocol.EvAsked, From: w.partName(m.p)})
	}
	if m.epoch != w.epoch || mach == nil {
		return nil // an answer to a call of an earlier life: its connection is gone
	}
	from := w.partName(m.p)
	switch {
	case m.failed:
		return w.step(t, protocol.Event{Kind: protocol.EvCallFailed, From: from, Msg: m.kind, Err: "lost"})
	case m.kind == protocol.MsgPrepare:
		return w.step(t, protocol.Event{Kind: protocol.EvVote, From: from, Vote: m.vote})
	case m.kind == protocol.MsgAskHeld:
		return w.step(t, protocol.Event{Kind: protocol.EvHeld, From: from, Held: m.held})
	}
	return w.step(t, protocol.Event{Kind: protocol.EvAcked, From: from, Msg: m.kind})
}

// rejoin has excluded participant p catch up and rejoin the write set,
// as coordinator/catchup.go does, in one step: it drops what it held
// (tombstoning what it had prepared) and fences off every transaction
// started so far; it copies from a participant of the write set every
// transaction committed there (applied, or held prepared and committed
// at the coordinator); and its include record is made durable, with all
// queued before it. It runs only while no transaction holds keys (the
// coordinator's drain), so the copy stands for every one started.
func (w *world) rejoin(p int) error {
	w.rejoins++
	src := -1
	for q := range w.parts {
		if q != p && w.excluded&(1<<q) == 0 && w.excluding&(1<<q) == 0 && src < 0 {
			src = q
		}
	}
	if src < 0 {
		return nil // nobody to copy from (cannot happen: one always stays)
	}
	var committed, started uint8
	s := &w.parts[src]
	for t := range w.tx {
		bit := uint8(1) << t
		if w.tx[t].id == "" {
			continue
		}
		started |= bit
		m := w.tx[t].m
		decided := m != nil && (m.State() == protocol.Committing || m.State() == protocol.Committed)
		if (s.applied|s.copied)&bit != 0 || (s.prepared&bit != 0 && decided) {
			committed |= bit
		}
	}
	pt := &w.parts[p]
	pt.tomb |= pt.prepared
	pt.prepared, pt.applied, pt.dropped = 0, 0, 0
	pt.lock = map[string]int{}
	pt.copied, pt.covered = committed, started
	if !w.cfg.Bugs.NoFence {
		pt.fence = started
	}
	w.log = append(w.log, entry{rec: protocol.Record{Kind: protocol.KindInclude, Participants: []string{w.partName(p)}}, tx: -1})
	if err := w.fsync(); err != nil {
		return err
	}
	w.excluded &^= 1 << p
	return nil
}
