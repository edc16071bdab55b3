package explore

import (
	"fmt"

	"github.com/twopc/twopc/protocol"
)

// violation is a broken promise, found at the step that broke it.
type violation struct{ msg string }

func (v *violation) Error() string { return v.msg }

func violated(format string, args ...any) error {
	return &violation{fmt.Sprintf(format, args...)}
}

// step feeds ev to transaction t's machine and carries out what it asks.
func (w *world) step(t int, ev protocol.Event) error {
	m := w.tx[t].m
	if m == nil {
		return nil
	}
	return w.apply(t, m.Step(ev))
}

// apply carries out a Ready as the driver does (see protocol.Ready):
// queue its records; if it says to wait, hold its effects until they are
// durable; else send them now.
func (w *world) apply(t int, rd protocol.Ready) error {
	var kinds []protocol.Kind
	for _, r := range rd.Records {
		e := entry{rec: r, tx: t, waited: rd.Wait && !w.cfg.Bugs.IgnoreWait}
		e.lost = w.cfg.Bugs.LyingLog && r.Kind == protocol.KindStaged
		w.log = append(w.log, e)
		kinds = append(kinds, r.Kind)
	}
	eff := effects{rd.Messages, rd.Reply, rd.Answer}
	if rd.Retry {
		w.tx[t].retry = true
	}
	if rd.Release {
		for k, holders := range w.locks {
			if holders &^= 1 << t; holders == 0 {
				delete(w.locks, k)
			} else {
				w.locks[k] = holders
			}
		}
	}
	if rd.To == protocol.Finished || rd.To == protocol.Failed {
		w.tx[t].m = nil // forgotten
		w.tx[t].retry = false
	}
	if rd.Wait && !w.cfg.Bugs.IgnoreWait {
		w.blocked = append(w.blocked, blocked{tx: t, upto: len(w.log), recs: kinds, eff: eff})
		return nil
	}
	return w.release(t, eff)
}

// release sends effects, checking that the protocol allows each now.
func (w *world) release(t int, eff effects) error {
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
		w.net = append(w.net, toPart(p, t, msg.Kind, w.epoch))
	}
	if r := eff.reply; r != nil {
		w.tx[t].reply = 1 + int(r.Kind)
		switch r.Kind {
		case protocol.ReplyCommitted:
			if !w.durableHas(id, protocol.KindStaged) {
				return violated("%s: the client heard success before STAGED is durable", id)
			}
			for p := range w.parts {
				if w.tx[t].members&(1<<p) == 0 || w.excluded&(1<<p) != 0 {
					continue // not in its write set, or its exclusion is durable
				}
				if w.parts[p].prepared&(1<<t) == 0 && w.parts[p].applied&(1<<t) == 0 {
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
			if w.tx[t].waiting&(1<<p) != 0 {
				if err := w.answer(p, t, eff.answer == protocol.AnswerCommit, true); err != nil {
					return err
				}
			}
		}
		w.tx[t].waiting = 0
	}
	return nil
}

// answer sends p the outcome of transaction t, which it asked about.
func (w *world) answer(p, t int, commit, fromMachine bool) error {
	id := w.tx[t].id
	switch {
	case commit && !w.durableHas(id, protocol.KindCommit):
		return violated("rule 1: commit of %s answered to p%d before COMMIT is durable", id, p+1)
	case !commit && fromMachine && !w.durableHas(id, protocol.KindAbort):
		return violated("rule 2: abort of %s answered to p%d before ABORT is durable", id, p+1)
	case !commit && !fromMachine && w.pendingInLog(id):
		return violated("presumed abort of %s answered to p%d while the log holds it unfinished", id, p+1)
	}
	w.net = append(w.net, msg{p: p, tx: t, question: true, commit: commit})
	return nil
}

// pendingInLog reports whether the log (durable or queued) holds a
// STAGED or COMMIT of txid without an outcome after it: the coordinator
// must not have forgotten such a transaction.
func (w *world) pendingInLog(txid string) bool {
	pending := false
	for _, e := range w.log {
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

func toPart(p, t int, k protocol.MsgKind, epoch int) msg {
	return msg{p: p, tx: t, kind: k, epoch: epoch}
}

// fsync makes every queued record durable, and tells the machines, in
// log order: a Ready that waited is told, then its effects go out.
func (w *world) fsync() error {
	from := w.durable
	w.durable = len(w.log)
	for i := from; i < w.durable; i++ {
		e := w.log[i]
		if e.rec.Kind == protocol.KindInclude {
			continue // rejoin made it durable itself
		}
		if e.rec.Kind == protocol.KindExclude {
			if err := w.excludeDurable(w.partIndex(e.rec.Participants[0])); err != nil {
				return err
			}
			continue
		}
		if !e.waited && e.rec.Kind != protocol.KindEnd && w.tx[e.tx].m != nil && w.tx[e.tx].m.ID() == e.rec.TxID {
			if err := w.step(e.tx, protocol.Event{Kind: protocol.EvDurable, Record: e.rec.Kind}); err != nil {
				return err
			}
		}
	}
	for len(w.blocked) > 0 && w.blocked[0].upto <= w.durable {
		bl := w.blocked[0]
		w.blocked = w.blocked[1:]
		for _, k := range bl.recs {
			if err := w.step(bl.tx, protocol.Event{Kind: protocol.EvDurable, Record: k}); err != nil {
				return err
			}
		}
		if err := w.release(bl.tx, bl.eff); err != nil {
			return err
		}
	}
	return nil
}

// crash kills the coordinator: what it had not made durable, its
// machines, timers, locks and connections are gone. Calls it sent may
// still reach participants. Then it restarts and recovers from the log.
func (w *world) crash() error {
	w.crashes++
	w.log = w.log[:w.durable]
	w.blocked = nil
	w.locks = map[string]uint8{}
	for t := range w.tx {
		w.tx[t].m, w.tx[t].retry, w.tx[t].waiting = nil, false, 0
	}
	var kept []msg
	for _, m := range w.net {
		if !m.toCoord {
			kept = append(kept, m)
		}
	}
	w.net = kept
	for p := range w.parts {
		w.parts[p].asking = 0 // their questions died with the connection
	}
	w.epoch++
	st, err := replay(w.durableRecords())
	if err != nil {
		return violated("recovery: %v", err)
	}
	w.excluding, w.excluded = 0, 0
	for _, name := range st.Excluded {
		w.excluded |= 1 << w.partIndex(name)
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
		w.tx[t].m = m
		for _, k := range rec.Keys {
			w.locks[k] |= 1 << t
		}
		if err := w.apply(t, rd); err != nil {
			return err
		}
	}
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

// exclude has the coordinator decide that participant p leaves the write
// set: its record is queued, and the machines hear of it once it is
// durable (excludeDurable), as the driver does.
func (w *world) exclude(p int) error {
	w.exclusions++
	w.excluding |= 1 << p
	w.log = append(w.log, entry{rec: protocol.Record{Kind: protocol.KindExclude, Participants: []string{w.partName(p)}}, tx: -1})
	if w.cfg.Bugs.EarlyExclude {
		return w.tellExcluded(p)
	}
	return nil
}

// excludeDurable: p's exclusion reached the disk.
func (w *world) excludeDurable(p int) error {
	if w.excluded&(1<<p) != 0 {
		return nil
	}
	w.excluding &^= 1 << p
	w.excluded |= 1 << p
	if w.cfg.Bugs.EarlyExclude {
		return nil // told already
	}
	return w.tellExcluded(p)
}

// tellExcluded steps every live machine with p's exclusion.
func (w *world) tellExcluded(p int) error {
	for t := range w.tx {
		if err := w.step(t, protocol.Event{Kind: protocol.EvExcluded, From: w.partName(p)}); err != nil {
			return err
		}
	}
	return nil
}
