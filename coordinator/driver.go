package coordinator

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twopc/twopc/protocol"
)

// This file is the driver's one rule, etcd raft's: persist what the
// machine asks to persist, then send. queue and carryOut do it for every
// transaction; the protocol's ordering rules are the machine's
// (protocol.Machine.ready), not the order of statements here.

// thenLog is a DecisionLog that can report a record's durability
// through a function rather than a wait (txlog.Log): then is called once,
// from another goroutine, after QueueThen has returned.
type thenLog interface {
	QueueThen(rec protocol.Record, lazy bool, then func(error))
}

// durability is how the driver learns that one of a Ready's records is
// durable: by calling wait, or through a note a thenLog fills in (a
// Ready that does not make the driver wait); neither for END, which
// nobody waits for.
type durability struct {
	wait func() error
	note *note
}

// note is one record's durability as a thenLog reports it. The report
// can come before carryOut has done what must precede the step it
// causes (replied puts committed values in the cache while the keys are
// still held): whichever of the report (tell) and carryOut's go-ahead
// (arm) comes second steps the machine.
type note struct {
	mu          sync.Mutex
	told, armed bool
	err         error
}

// tell records the log's report and says whether to step now.
func (n *note) tell(err error) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.told, n.err = true, err
	return n.armed
}

// arm gives carryOut's go-ahead and says whether to step now.
func (n *note) arm() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.armed = true
	return n.told
}

// queue queues rd's records of t in the log and returns, per record, how
// carryOut learns of its durability. The caller holds t.mu, or nobody
// else can step t yet.
func (c *Coordinator) queue(t *tx, rd protocol.Ready) []durability {
	var waits []durability
	t.logged = append(t.logged, rd.Records...)
	tl, _ := c.cfg.Log.(thenLog)
	for _, r := range rd.Records {
		switch {
		case r.Kind == protocol.KindEnd:
			if err := c.cfg.Log.AppendAsync(r); err != nil {
				failed := err
				waits = append(waits, durability{wait: func() error { return failed }})
				continue
			}
			waits = append(waits, durability{})
		case tl != nil && !rd.Wait:
			n, kind := &note{}, r.Kind
			tl.QueueThen(r, rd.Lazy, func(err error) {
				if n.tell(err) {
					c.inBackground(func() { c.durable(t, kind, err) })
				}
			})
			waits = append(waits, durability{note: n})
		case rd.Lazy:
			waits = append(waits, durability{wait: c.cfg.Log.QueueLazy(r)})
		default:
			waits = append(waits, durability{wait: c.cfg.Log.Queue(r)})
		}
	}
	return waits
}

// carryOut does what a Ready asks, in the order protocol.Ready gives.
func (c *Coordinator) carryOut(t *tx, rd protocol.Ready, waits []durability) {
	c.count(t, rd.From, rd.To)
	if rd.Flush {
		c.cfg.Log.Flush()
	}
	if rd.Wait {
		for i, w := range waits {
			if w.wait == nil {
				continue
			}
			if err := w.wait(); err != nil {
				c.logFailed(t, err)
				return
			}
			t.step(protocol.Event{Kind: protocol.EvDurable, Record: rd.Records[i].Kind})
		}
	}
	if r := rd.Reply; r != nil {
		c.replied(t, *r)
	}
	if rd.Answer != protocol.NoAnswer {
		t.answer(answer{commit: rd.Answer == protocol.AnswerCommit}, false)
	}
	for _, msg := range rd.Messages {
		c.send(t, msg)
	}
	if !rd.Wait {
		for i, w := range waits {
			kind := rd.Records[i].Kind
			switch {
			case w.note != nil:
				if w.note.arm() { // the log was quicker
					c.goBackground(func() { c.durable(t, kind, w.note.err) })
				}
			case w.wait != nil:
				c.goBackground(func() { c.durable(t, kind, w.wait()) })
			}
		}
	}
	if rd.Retry {
		n := t.retries.Add(1)
		delay := min(c.cfg.RetryInterval<<min(n-1, 16), 5*time.Second)
		c.goBackground(func() {
			select {
			case <-c.ctx.Done(): // a restart resumes from the log
			case <-time.After(delay):
				t.step(protocol.Event{Kind: protocol.EvRetry})
			}
		})
	}
	if rd.Release {
		t.unlock()
		c.released(t)
	}
	switch rd.To {
	case protocol.Committed, protocol.Aborted:
		if rd.From != rd.To {
			close(t.settled)
		}
	case protocol.Finished, protocol.Failed:
		if rd.From != rd.To {
			if rd.From != protocol.Aborted && rd.From != protocol.Committed {
				close(t.settled) // finished without either: read-only, or failed
			}
			last := answer{commit: rd.From == protocol.Committed}
			if rd.To == protocol.Failed {
				last = answer{err: fmt.Errorf("coordinator: outcome of %s unknown until the coordinator recovers", t.id)}
			}
			t.answer(last, true)
			// A failed transaction stays known, answering that its
			// outcome is unknown: forgotten, Outcome and the sweep would
			// presume it aborted, when its COMMIT may yet be committed
			// (a leader that lost its term while COMMIT was out: the
			// next leader may hold it). The log failed: this coordinator
			// is on its way out.
			if rd.To == protocol.Finished {
				c.txs.Delete(t.id)
			}
		}
	}
}

// durable steps t with the durability of its record of kind, or fails
// the log with err.
func (c *Coordinator) durable(t *tx, kind protocol.Kind, err error) {
	if err != nil {
		c.logFailed(t, err)
		return
	}
	t.step(protocol.Event{Kind: protocol.EvDurable, Record: kind})
}

// replied hands the client its answer. A committed transaction's writes
// go into the value cache first, while its keys are still held: from now
// on every get sees them.
func (c *Coordinator) replied(t *tx, r protocol.Reply) {
	if r.Kind == protocol.ReplyCommitted {
		t.decided = time.Now()
		c.cfg.Observer.Phase(PhasePrepare, t.decided.Sub(t.started))
		if t.txn != nil {
			c.cache.setAll(t.txn, r.Succeeded)
		}
	}
	if r.Kind == protocol.ReplyUnknown && t.txn != nil {
		c.cache.forgetAll(t.txn.WriteKeys())
	}
	t.reply <- r
}

// logFailed: the decision log failed under t, so whatever it was logging
// may or may not be on disk. The process must restart and recover. A
// log closed under a stopping coordinator is no failure: recovery
// finishes what it was writing.
func (c *Coordinator) logFailed(t *tx, err error) {
	if c.ctx.Err() != nil {
		return
	}
	t.step(protocol.Event{Kind: protocol.EvLogFailed, Err: err.Error()})
	c.cfg.Fatal(err)
}

// asyncParticipant is a Participant that takes a call without a
// goroutine waiting on it (peer.Client, whose calls travel in batches):
// done gets the result once, from another goroutine, after Go has
// returned: the answer, or an error by deadline at the latest.
type asyncParticipant interface {
	Go(call protocol.Call, deadline time.Time, done func(protocol.CallResult))
}

// send makes one call to a participant, without waiting, and steps the
// machine with its answer when it comes.
func (c *Coordinator) send(t *tx, msg protocol.Message) {
	m := c.roster.Load().byName[msg.To]
	if m == nil && c.roster.Load().removed[msg.To] {
		return // taken out for good: the machine heard it was excluded
	}
	a, ok := asyncParticipant(nil), false
	if m != nil {
		a, ok = m.Participant.(asyncParticipant)
	}
	if !ok || msg.Kind == protocol.MsgAskHeld {
		c.goBackground(func() { c.call(t, msg) })
		return
	}
	call := callOf(t, msg)
	c.stopMu.RLock() // nothing is sent once Close has returned
	defer c.stopMu.RUnlock()
	if c.stopped {
		return
	}
	m.inflight.Add(1)
	a.Go(call, time.Now().Add(c.callTimeout(msg.Kind)), func(r protocol.CallResult) {
		defer m.inflight.Add(-1)
		c.inBackground(func() { c.answered(t, m, msg, r, false) })
	})
}

// inBackground runs f now, as background work that Close waits for;
// after Close it does nothing, like goBackground.
func (c *Coordinator) inBackground(f func()) {
	c.stopMu.RLock()
	if c.stopped {
		c.stopMu.RUnlock()
		return
	}
	c.wg.Add(1)
	c.stopMu.RUnlock()
	defer c.wg.Done()
	f()
}

func (c *Coordinator) callTimeout(k protocol.MsgKind) time.Duration {
	if k == protocol.MsgPrepare {
		return c.cfg.PrepareTimeout
	}
	return c.cfg.CallTimeout
}

// call makes one call to a participant, waiting for it, and steps the
// machine with its answer.
func (c *Coordinator) call(t *tx, msg protocol.Message) {
	m := c.roster.Load().byName[msg.To]
	if m == nil {
		// Named in the log but not configured: it cannot be told, so the
		// transaction stays in doubt, visible in status, until an
		// operator configures it again.
		c.log.Error("coordinator: transaction names a participant that is not configured; it stays in doubt",
			"txid", t.id, "participant", msg.To)
		t.step(protocol.Event{Kind: protocol.EvCallFailed, From: msg.To, Msg: msg.Kind, Err: "not configured"})
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.callTimeout(msg.Kind))
	defer cancel()
	m.inflight.Add(1)
	defer m.inflight.Add(-1)
	if msg.Kind != protocol.MsgAskHeld {
		c.answered(t, m, msg, callWaiting(ctx, m.Participant, callOf(t, msg)), false)
		return
	}
	pts, err := m.PreparedTxs(ctx)
	held := false
	for _, p := range pts {
		held = held || p.TxID == t.id
	}
	c.answered(t, m, msg, protocol.CallResult{Err: err}, held)
}

// callOf is the call that carries msg, one of t's messages.
func callOf(t *tx, msg protocol.Message) protocol.Call {
	call := protocol.Call{Kind: msg.Kind, TxID: t.id}
	if msg.Kind == protocol.MsgPrepare {
		call.Txn = t.txn
	}
	return call
}

// callWaiting makes call to p and waits for its result.
func callWaiting(ctx context.Context, p Participant, call protocol.Call) protocol.CallResult {
	var r protocol.CallResult
	switch call.Kind {
	case protocol.MsgPrepare:
		r.Vote, r.Err = p.Prepare(ctx, call.TxID, call.Txn)
	case protocol.MsgCommit:
		r.Err = p.Commit(ctx, call.TxID)
	case protocol.MsgAbort:
		r.Err = p.Abort(ctx, call.TxID)
	case protocol.MsgRead:
		r.Keys, r.Err = p.Read(ctx, call.Keys...)
	default:
		r.Err = fmt.Errorf("coordinator: no call of kind %d", call.Kind)
	}
	return r
}

// answered steps t with the answer r to msg, a call to m (held: the
// answer to an ask-held call).
func (c *Coordinator) answered(t *tx, m *member, msg protocol.Message, r protocol.CallResult, held bool) {
	if c.ctx.Err() != nil {
		return // stopping: a restart resumes from the log
	}
	m.heard(r.Err)
	c.noticeDeposed(r.Err)
	if r.Err != nil {
		t.step(protocol.Event{Kind: protocol.EvCallFailed, From: msg.To, Msg: msg.Kind, Err: r.Err.Error()})
		return
	}
	ev := protocol.Event{From: msg.To, Msg: msg.Kind}
	switch msg.Kind {
	case protocol.MsgPrepare:
		ev.Kind, ev.Vote = protocol.EvVote, r.Vote
	case protocol.MsgCommit, protocol.MsgAbort:
		ev.Kind = protocol.EvAcked
	case protocol.MsgAskHeld:
		ev.Kind, ev.Held = protocol.EvHeld, held
	}
	t.step(ev)
}
