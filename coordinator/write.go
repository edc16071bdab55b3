package coordinator

import (
	"context"
	"errors"
	"fmt"
	"github.com/twopc/twopc/protocol"
	"time"

	"github.com/twopc/twopc/participant"
)

// Put stores value under key on every participant, or on none.
func (c *Coordinator) Put(ctx context.Context, key string, value participant.Value) error {
	_, err := c.write(ctx, participant.Write{Key: key, Op: participant.OpPut, Value: value})
	return err
}

// Delete removes key on every participant, or on none, and reports
// whether it had a value.
func (c *Coordinator) Delete(ctx context.Context, key string) (existed bool, err error) {
	return c.write(ctx, participant.Write{Key: key, Op: participant.OpDelete})
}

// write runs one transaction. It returns once the outcome is durable; the
// commit phase goes on in the background, holding the key until every
// participant has applied it (or been handed to the re-sender).
//
// The STAGED record is written while the participants prepare (parallel
// commits), so the client waits for one round of fsyncs, not two.
func (c *Coordinator) write(ctx context.Context, w participant.Write) (existed bool, err error) {
	if c.ctx.Err() != nil {
		return false, ErrStopped
	}
	unlock, ok := c.locks.lock(ctx, w.Key, c.cfg.LockTimeout, c.flush)
	if !ok {
		return false, fmt.Errorf("%w: key busy for longer than %v", ErrConflict, c.cfg.LockTimeout)
	}
	t := newTxn(txID(c.cfg.Epoch, c.seq.Add(1)), w)
	c.txs.Store(t.id, t)
	c.active.Add(1)

	// Queued before any prepare is sent, so that an ABORT always follows
	// it in the file.
	staged := c.cfg.Log.Queue(protocol.Record{Kind: protocol.KindStaged, TxID: t.id, Participants: c.names, Keys: []string{w.Key}})
	start := time.Now()
	existed, err = c.prepare(ctx, t)
	lerr := staged()
	decided := time.Now()
	c.cfg.Observer.Phase(PhasePrepare, decided.Sub(start))
	if lerr == nil && err == nil && c.crashAt("before-decision") {
		lerr = errCrashed // every vote and STAGED durable, nothing decided
	}
	if lerr != nil {
		// Every participant may have voted YES and STAGED may be on disk:
		// only recovery can tell.
		c.active.Add(-1)
		return false, c.logFailed(lerr, w.Key, unlock)
	}
	if err == nil && !t.decide(stateCommitting) {
		// A participant asked for the outcome first and was told abort.
		err = fmt.Errorf("%w: a participant gave up waiting for the decision", ErrUnavailable)
	}
	if err != nil {
		c.active.Add(-1)
		if errors.Is(err, errCrashed) {
			return false, err
		}
		if lerr := c.abort(t); lerr != nil {
			return false, c.logFailed(lerr, w.Key, unlock)
		}
		c.aborted.Add(1)
		c.goBackground(func() { c.abortAll(t); unlock() })
		return false, err
	}
	// Committed: every vote is durable and so is STAGED, so recovery would
	// commit it too. The COMMIT record follows in the background.
	c.cache.set(w) // before the client hears of it: gets see it from now on
	c.active.Add(-1)
	c.inDoubt.Add(1)
	if c.crashAt("after-decision") {
		return existed, nil // durable: the client may hear success
	}
	c.goBackground(func() {
		if c.logCommit(t) && c.commitAll(t, c.members) {
			c.cfg.Observer.Phase(PhaseCommit, time.Since(decided))
		}
		unlock()
	})
	return existed, nil
}

// logCommit makes t's COMMIT record durable, which must happen before any
// participant hears commit: after that, a participant may forget that it
// held t prepared, and recovery must not take its silence for a NO.
func (c *Coordinator) logCommit(t *txn) bool {
	if c.crashAt("before-commit-record") {
		return false
	}
	// The client has its answer: this fsync can wait to share the next
	// STAGED record's (a write waiting for the key ends the wait: flush).
	err := c.cfg.Log.QueueLazy(protocol.Record{Kind: protocol.KindCommit, TxID: t.id, Participants: c.names, Keys: []string{t.write.Key}})()
	if err != nil {
		t.settle(err)
		c.fatal(err)
		return false
	}
	t.decide(stateCommitted)
	t.settle(nil)
	return !c.crashAt("after-commit-record")
}

// abort decides abort for t, unless a participant's question decided it
// first, and returns once the ABORT record is durable: only then may the
// client or a participant hear of it (see txState).
func (c *Coordinator) abort(t *txn) error {
	if t.decide(stateAborted) {
		return c.logAbort(t)
	}
	<-t.settled // Outcome decided, and is logging it
	return t.logErr
}

// logAbort writes the ABORT record of a transaction just decided aborted.
func (c *Coordinator) logAbort(t *txn) error {
	if c.crashAt("before-abort-record") {
		t.settle(errCrashed)
		return errCrashed
	}
	err := c.cfg.Log.Append(protocol.Record{Kind: protocol.KindAbort, TxID: t.id})
	t.settle(err)
	if err != nil {
		c.fatal(err)
	}
	return err
}

// fatal reports a failed decision log, unless the failure is a simulated
// crash (tests), after which nothing is logged anyway.
func (c *Coordinator) fatal(err error) {
	if !errors.Is(err, errCrashed) {
		c.cfg.Fatal(err)
	}
}

// logFailed handles a decision log that failed under a write: the record
// may or may not be on disk, so the outcome is unknown until recovery.
// Fatal normally ends the process; if it returns (tests, an embedding
// program), at least the key is not held forever.
func (c *Coordinator) logFailed(err error, key string, unlock func()) error {
	if errors.Is(err, errCrashed) {
		return err
	}
	c.cache.forget(key)
	c.fatal(err)
	unlock()
	return fmt.Errorf("coordinator: outcome unknown, decision log failed: %w", err)
}

// prepare asks every participant to prepare t in parallel, within the
// prepare timeout, and returns at the first refusal or failure.
func (c *Coordinator) prepare(ctx context.Context, t *txn) (existed bool, err error) {
	if c.crashAt("before-prepare") {
		return false, errCrashed
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.PrepareTimeout)
	defer cancel()
	type answer struct {
		m    *member
		vote participant.Vote
		err  error
	}
	answers := make(chan answer, len(c.members))
	for _, m := range c.members {
		go func() {
			if c.crashAt("send-prepare:" + m.Name) {
				answers <- answer{m, participant.Vote{}, errCrashed}
				return
			}
			v, err := c.call(m, func() (participant.Vote, error) { return m.Prepare(ctx, t.id, t.write) })
			answers <- answer{m, v, err}
		}()
	}
	for range c.members {
		a := <-answers
		switch {
		case a.err != nil:
			return false, fmt.Errorf("%w: %s did not vote: %v", ErrUnavailable, a.m.Name, a.err)
		case !a.vote.Yes && a.vote.Conflict:
			return false, fmt.Errorf("%w: %s: %s", ErrConflict, a.m.Name, a.vote.Reason)
		case !a.vote.Yes:
			return false, fmt.Errorf("%w: %s refused: %s", ErrUnavailable, a.m.Name, a.vote.Reason)
		}
		existed = a.vote.Existed
		if c.crashAt("prepared:" + a.m.Name) {
			return false, errCrashed
		}
	}
	if c.crashAt("after-votes") {
		return false, errCrashed
	}
	return existed, nil
}

// call runs one participant call, counting it in flight and refusing it
// once a simulated crash has happened.
func (c *Coordinator) call(m *member, f func() (participant.Vote, error)) (participant.Vote, error) {
	if c.dead.Load() {
		return participant.Vote{}, errCrashed
	}
	m.inflight.Add(1)
	defer m.inflight.Add(-1)
	return f()
}

// flushable is a participant transport that may hold commits and aborts
// back for a moment to batch them (participant.Client does).
type flushable interface{ Flush() }

// flush makes lingering COMMIT records durable and sends held-back
// commits and aborts now: a write is waiting for a key that one of them
// still holds.
func (c *Coordinator) flush() {
	c.cfg.Log.Flush()
	for _, m := range c.members {
		if f, ok := m.Participant.(flushable); ok {
			f.Flush()
		}
	}
}
