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
		if w.excluded()&(1<<m.p) == 0 {
			if err := w.hear(m.tx, m.commit); err != nil {
				return nil, err
			}
		}
		if m.commit {
			return nil, w.commitAt(m.p, m.tx)
		}
		return nil, w.abortAt(m.p, m.tx)
	}
	// Fencing: a call of a term lower than one p has seen comes from a
	// deposed leader (or an earlier life); p refuses it, which the
	// sender takes for a failed call.
	if m.epoch < p.term {
		reply.failed = true
		return &reply, nil
	}
	if !w.cfg.Bugs.NoTermCheck {
		p.term = m.epoch // kept durably
	}
	switch m.kind {
	case protocol.MsgPrepare:
		switch {
		case p.tomb&bit != 0:
			reply.vote = protocol.Vote{Kind: protocol.VoteNo, Reason: "already aborted"}
		case p.fence&bit != 0 || w.tx[m.tx].started < p.fenceEpoch:
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
	case pt.tomb&bit != 0 && w.excluded()&(1<<p) != 0:
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
	if (pt.applied|pt.copied)&bit != 0 && w.excluded()&(1<<p) == 0 {
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

// receive has the coordinator m is addressed to take it.
func (w *world) receive(m msg) error {
	t := m.tx
	c := w.coordOf(m.epoch)
	if m.question {
		w.parts[m.p].asking &^= 1 << t
		if c == nil {
			return nil // its connection is gone: p asks again
		}
		if c.mach[t] == nil {
			if w.tx[t].started > c.epoch && !w.cfg.Bugs.PresumeLater {
				// Issued by a later leader: this one was deposed and
				// cannot know its outcome. It refuses to answer; p asks
				// again (the leader, in the end).
				return nil
			}
			// Unknown to this coordinator: never committed (presumed abort).
			return w.answer(c, m.p, t, false, false)
		}
		c.waiting[t] |= 1 << m.p
		return w.step(c, t, protocol.Event{Kind: protocol.EvAsked, From: w.partName(m.p)})
	}
	if c == nil || c.mach[t] == nil {
		return nil // an answer to a call of a coordinator gone: its connection is gone too
	}
	from := w.partName(m.p)
	switch {
	case m.failed:
		return w.step(c, t, protocol.Event{Kind: protocol.EvCallFailed, From: from, Msg: m.kind, Err: "lost"})
	case m.kind == protocol.MsgPrepare:
		return w.step(c, t, protocol.Event{Kind: protocol.EvVote, From: from, Vote: m.vote})
	case m.kind == protocol.MsgAskHeld:
		return w.step(c, t, protocol.Event{Kind: protocol.EvHeld, From: from, Held: m.held})
	}
	return w.step(c, t, protocol.Event{Kind: protocol.EvAcked, From: from, Msg: m.kind})
}

// rejoin has excluded participant p catch up and rejoin the write set,
// as coordinator/catchup.go does, in one step, driven by the leader: it
// drops what it held (tombstoning what it had prepared) and fences off
// every transaction started so far (those started before by this
// leader, and every one of an earlier epoch, whose ids order before the
// fence); it copies from a participant of the write set every
// transaction committed there (applied, or held prepared and committed
// at the leader); and its include record is made durable, with all
// queued before it. The catch-up's calls carry the leader's term. It
// runs only while no transaction holds keys at the leader (its drain),
// so the copy stands for every one started.
func (w *world) rejoin(p int) error {
	w.rejoins++
	c := w.lead()
	src := -1
	for q := range w.parts {
		if q != p && c.excluded&(1<<q) == 0 && c.excluding&(1<<q) == 0 && src < 0 {
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
		m := c.mach[t]
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
		pt.fence, pt.fenceEpoch = started, c.epoch
	}
	if !w.cfg.Bugs.NoTermCheck {
		pt.term = max(pt.term, c.epoch)
	}
	c.log = append(c.log, entry{rec: protocol.Record{Kind: protocol.KindInclude, Participants: []string{w.partName(p)}}, tx: -1})
	if err := w.fsync(); err != nil {
		return err
	}
	c = w.lead()
	c.excluded &^= 1 << p
	return nil
}
