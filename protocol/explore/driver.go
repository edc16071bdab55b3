package explore

import (
	"fmt"
	"slices"

	"github.com/twopc/twopc/protocol"
)

// violation is a broken promise, found at the step that broke it.
type violation struct{ msg string }

func (v *violation) Error() string { return v.msg }

func violated(format string, args ...any) error {
	return &violation{fmt.Sprintf(format, args...)}
}

// step feeds ev to coordinator c's machine of transaction t and carries
// out what it asks.
func (w *world) step(c *coord, t int, ev protocol.Event) error {
	m := c.mach[t]
	if m == nil {
		return nil
	}
	return w.apply(c, t, m.Step(ev))
}

// apply carries out a Ready as the driver does (see protocol.Ready):
// queue its records; if it says to wait, hold its effects until they are
// durable; else send them now.
func (w *world) apply(c *coord, t int, rd protocol.Ready) error {
	var kinds []protocol.Kind
	for _, r := range rd.Records {
		e := entry{rec: r, tx: t, waited: rd.Wait && !w.cfg.Bugs.IgnoreWait}
		e.lost = w.cfg.Bugs.LyingLog && r.Kind == protocol.KindStaged
		c.log = append(c.log, e)
		kinds = append(kinds, r.Kind)
	}
	eff := effects{rd.Messages, rd.Reply, rd.Answer}
	if rd.Retry {
		c.retry |= 1 << t
	}
	if rd.Release {
		for k, holders := range c.locks {
			if holders &^= 1 << t; holders == 0 {
				delete(c.locks, k)
			} else {
				c.locks[k] = holders
			}
		}
	}
	if rd.To == protocol.Finished || rd.To == protocol.Failed {
		c.mach[t] = nil // forgotten
		c.retry &^= 1 << t
	}
	if rd.Wait && !w.cfg.Bugs.IgnoreWait {
		c.blocked = append(c.blocked, blocked{tx: t, upto: len(c.log), recs: kinds, eff: eff})
		return nil
	}
	return w.release(c, t, eff)
}

// release sends effects, checking that the protocol allows each now.
// What is durable is the leader's committed log, which every later
// leader's holds: a deposed leader knows less, never more.
func (w *world) release(c *coord, t int, eff effects) error {
	id := w.tx[t].id
	for _, msg := range eff.msgs {
		p := w.partIndex(msg.To)
		switch msg.Kind {
		case protocol.MsgCommit:
			if !w.durableHas(id, protocol.KindCommit) {
				return violated("rule 1: commit of %s sent to %s before COMMIT is durable", id, msg.To)
			}
			if err := w.hear(t, true); err != nil {
				return err
			}
		case protocol.MsgAbort:
			if !w.durableHas(id, protocol.KindAbort) {
				return violated("rule 2: abort of %s sent to %s before ABORT is durable", id, msg.To)
			}
			if err := w.hear(t, false); err != nil {
				return err
			}
		}
		w.net = append(w.net, msg2(p, t, msg.Kind, c.epoch))
	}
	if r := eff.reply; r != nil {
		w.tx[t].reply = 1 + int(r.Kind)
		switch r.Kind {
		case protocol.ReplyCommitted:
			if !w.durableHas(id, protocol.KindStaged) {
				return violated("%s: the client heard success before STAGED is durable", id)
			}
			for p := range w.parts {
				if w.tx[t].members&(1<<p) == 0 || w.excluded()&(1<<p) != 0 {
					continue // not in its write set, or its exclusion is durable
				}
				// A deposed leader may hear the last vote after the next
				// leader committed it and p caught up: its copy holds it.
				if (w.parts[p].prepared|w.parts[p].applied|w.parts[p].copied)&(1<<t) == 0 {
					return violated("%s: the client heard success but p%d holds no YES vote and is not durably excluded", id, p+1)
				}
			}
			if err := w.hear(t, true); err != nil {
				return err
			}
		case protocol.ReplyAborted:
			if !w.durableHas(id, protocol.KindAbort) {
				return violated("rule 2: the client heard abort of %s before ABORT is durable", id)
			}
			if err := w.hear(t, false); err != nil {
				return err
			}
		}
	}
	if eff.answer != protocol.NoAnswer {
		for p := range w.parts {
			if c.waiting[t]&(1<<p) != 0 {
				if err := w.answer(c, p, t, eff.answer == protocol.AnswerCommit, true); err != nil {
					return err
				}
			}
		}
		c.waiting[t] = 0
	}
	return nil
}

// answer has coordinator c send p the outcome of transaction t, which it
// asked about.
func (w *world) answer(c *coord, p, t int, commit, fromMachine bool) error {
	id := w.tx[t].id
	switch {
	case commit && !w.durableHas(id, protocol.KindCommit):
		return violated("rule 1: commit of %s answered to p%d before COMMIT is durable", id, p+1)
	case !commit && fromMachine && !w.durableHas(id, protocol.KindAbort):
		return violated("rule 2: abort of %s answered to p%d before ABORT is durable", id, p+1)
	case !commit && !fromMachine && pendingIn(c.log, id):
		// Its own log: a deposed leader may forget a transaction whose
		// END the next leader's log lacks; the commits the next leader
		// sends again are idempotent, and the participant that asked
		// applied it already (else the outcome checks fail).
		return violated("presumed abort of %s answered to p%d (epoch %d) while the log holds it unfinished", id, p+1, c.epoch)
	}
	w.net = append(w.net, msg{p: p, tx: t, question: true, commit: commit, epoch: c.epoch})
	return nil
}

// pendingIn reports whether log (durable or queued) holds a STAGED or
// COMMIT of txid without an outcome after it: a coordinator must not
// have forgotten such a transaction.
func pendingIn(log []entry, txid string) bool {
	pending := false
	for _, e := range log {
		if e.rec.TxID != txid || e.lost {
			continue
		}
		switch e.rec.Kind {
		case protocol.KindStaged, protocol.KindCommit:
			pending = true
		case protocol.KindAbort, protocol.KindEnd:
			pending = false
		}
	}
	return pending
}

// hear records that someone heard an outcome of t: never both.
func (w *world) hear(t int, commit bool) error {
	if commit {
		w.tx[t].commit = true
	} else {
		w.tx[t].abort = true
	}
	if w.tx[t].commit && w.tx[t].abort {
		return violated("%s: both commit and abort were heard", w.tx[t].id)
	}
	return nil
}

func msg2(p, t int, k protocol.MsgKind, epoch int) msg {
	return msg{p: p, tx: t, kind: k, epoch: epoch}
}

// fsync makes every record the leader queued durable (raft commits
// them), and tells its machines, in log order: a Ready that waited is
// told, then its effects go out.
func (w *world) fsync() error {
	c := w.lead()
	from := c.durable
	c.durable = len(c.log)
	for i := from; i < c.durable; i++ {
		e := c.log[i]
		if e.rec.Kind == protocol.KindInclude {
			continue // rejoin made it durable itself
		}
		if e.rec.Kind == protocol.KindExclude {
			if err := w.excludeDurable(w.partIndex(e.rec.Participants[0])); err != nil {
				return err
			}
			continue
		}
		if !e.waited && e.rec.Kind != protocol.KindEnd && c.mach[e.tx] != nil && c.mach[e.tx].ID() == e.rec.TxID {
			if err := w.step(c, e.tx, protocol.Event{Kind: protocol.EvDurable, Record: e.rec.Kind}); err != nil {
				return err
			}
		}
	}
	for len(c.blocked) > 0 && c.blocked[0].upto <= c.durable {
		bl := c.blocked[0]
		c.blocked = c.blocked[1:]
		for _, k := range bl.recs {
			if err := w.step(c, bl.tx, protocol.Event{Kind: protocol.EvDurable, Record: k}); err != nil {
				return err
			}
		}
		if err := w.release(c, bl.tx, bl.eff); err != nil {
			return err
		}
	}
	return nil
}

// crash kills the leader: what it had not made durable, its machines,
// timers, locks and connections are gone. Calls it sent may still reach
// participants. Then it restarts, with the next epoch, and recovers from
// the log. (With several coordinators, a leader's crash is a handover
// whose deposed leader stops at once.)
func (w *world) crash() error {
	w.crashes++
	old := w.lead()
	w.dropConnections(old.epoch)
	log := old.log[:old.durable:old.durable]
	w.epochs++
	w.coords[0] = newCoord(w.epochs, len(w.tx))
	c := w.lead()
	c.log, c.durable = log, len(log)
	return w.recover(c, c.log)
}

// dropConnections: coordinator epoch is gone, and with it the answers
// and questions on their way to it (their connections died).
func (w *world) dropConnections(epoch int) {
	var kept []msg
	for _, m := range w.net {
		if m.toCoord && m.epoch == epoch {
			if m.question {
				w.parts[m.p].asking &^= 1 << m.tx
			}
			continue
		}
		kept = append(kept, m)
	}
	w.net = kept
}

// recover has coordinator c, its log just read, finish what recs (the
// records it recovers from, txlog's replay rules) leave pending.
func (w *world) recover(c *coord, recs []entry) error {
	st, err := replay(records(recs))
	if err != nil {
		return violated("recovery: %v", err)
	}
	c.excluding, c.excluded = 0, 0
	for _, name := range st.Excluded {
		c.excluded |= 1 << w.partIndex(name)
	}
	excluded := st.Excluded
	if w.cfg.Bugs.ForgetExcluded {
		excluded = nil
	}
	for _, rec := range st.Pending {
		if rec.Kind == protocol.KindStaged && w.cfg.Bugs.SkipStaged {
			continue
		}
		t := w.txIndex(rec.TxID)
		m, rd := protocol.Recover(rec, excluded)
		c.mach[t] = m
		for _, k := range rec.Keys {
			c.locks[k] |= 1 << t
		}
		if err := w.apply(c, t, rd); err != nil {
			return err
		}
	}
	return nil
}

// handover elects another coordinator while the leader runs on, deposed
// without knowing it yet. The new leader's log holds what was committed
// and the first k records the old leader queued (raft may have
// replicated them to a majority without the old leader learning it);
// it commits them with the first record of its term, before it reads
// its log, so all of them are durable from now on. None of the old
// leader's other records, queued or still to come, ever will be. It
// recovers as a restarted coordinator does, with the next epoch, as
// its term.
func (w *world) handover(k int) error {
	w.handovers++
	old := w.lead()
	w.epochs++
	c := newCoord(w.epochs, len(w.tx))
	c.log = slices.Clone(old.log[:old.durable+k])
	c.durable = len(c.log)
	from := c.log
	if w.cfg.Bugs.RecoverSeenDurable {
		from = old.log[:old.durable]
	}
	w.coords = slices.Insert(w.coords, 0, c)
	return w.recover(w.lead(), from)
}

// stepDown: deposed coordinator i learns it lost the leadership (a
// participant refused its term, or raft told it). Every wait for
// durability fails: each machine is stepped with EvLogFailed, as the
// driver does when its log fails, so a client still waiting hears that
// the outcome is unknown. Then it stops acting as a leader: its
// machines, timers, locks and the connections to it are gone (it
// forwards to the leader from now on). Calls it sent may still reach
// participants.
func (w *world) stepDown(i int) error {
	c := &w.coords[i]
	for t, m := range c.mach {
		if m == nil {
			continue
		}
		rd := m.Step(protocol.Event{Kind: protocol.EvLogFailed, Err: "leadership lost"})
		if r := rd.Reply; r != nil && r.Kind == protocol.ReplyUnknown && w.cfg.Bugs.AbortOnLostLeadership {
			r.Kind, r.Cause = protocol.ReplyAborted, protocol.CauseUnavailable
		}
		if err := w.release(c, t, effects{reply: rd.Reply}); err != nil {
			return err
		}
	}
	w.dropConnections(c.epoch)
	w.coords = slices.Delete(w.coords, i, i+1)
	return nil
}

func (w *world) txIndex(id string) int {
	for t := range w.tx {
		if w.tx[t].id == id {
			return t
		}
	}
	panic("explore: unknown transaction " + id)
}

// exclude has the leader decide that participant p leaves the write
// set: its record is queued, and the machines hear of it once it is
// durable (excludeDurable), as the driver does.
func (w *world) exclude(p int) error {
	w.exclusions++
	c := w.lead()
	c.excluding |= 1 << p
	c.log = append(c.log, entry{rec: protocol.Record{Kind: protocol.KindExclude, Participants: []string{w.partName(p)}}, tx: -1})
	if w.cfg.Bugs.EarlyExclude {
		return w.tellExcluded(p)
	}
	return nil
}

// excludeDurable: p's exclusion is committed.
func (w *world) excludeDurable(p int) error {
	c := w.lead()
	if c.excluded&(1<<p) != 0 {
		return nil
	}
	c.excluding &^= 1 << p
	c.excluded |= 1 << p
	if w.cfg.Bugs.EarlyExclude {
		return nil // told already
	}
	return w.tellExcluded(p)
}

// tellExcluded steps every live machine of the leader with p's
// exclusion.
func (w *world) tellExcluded(p int) error {
	c := w.lead()
	for t := range w.tx {
		if err := w.step(c, t, protocol.Event{Kind: protocol.EvExcluded, From: w.partName(p)}); err != nil {
			return err
		}
	}
	return nil
}
