package coordinator

import (
	"context"
	"errors"
	"fmt"

	"github.com/twopc/twopc/protocol"
)

// Result is what a transaction gives its client.
type Result struct {
	Succeeded bool              // every compare held: the success branch ran
	Results   []protocol.Result // one per op of the branch that ran
}

// Txn runs t atomically on every participant: its compares decide which
// branch runs, and the branch's writes take effect everywhere or nowhere.
// t must be valid (t.Validate). A transaction that writes in neither
// branch is served by one participant and logs nothing.
//
// Errors: ErrConflict and ErrUnavailable (nothing written, safe to retry),
// ErrDiverged (nothing written, replicas differ), ErrStopped, and
// ErrOutcomeUnknown (the decision log failed, or ctx ended before the
// outcome was known).
func (c *Coordinator) Txn(ctx context.Context, t *protocol.Txn) (Result, error) {
	if c.ctx.Err() != nil {
		return Result{}, ErrStopped
	}
	if t.ReadOnly() {
		return c.readTxn(ctx, t)
	}
	keys, writes := t.KeySets()
	unlock, ok := c.locks.lockAll(ctx, keys, c.cfg.LockTimeout, c.flush)
	if !ok {
		return Result{}, fmt.Errorf("%w: keys busy for longer than %v", ErrConflict, c.cfg.LockTimeout)
	}
	c.startGate.RLock() // an include waits for this start to be over
	id := protocol.NewTxID(c.cfg.Epoch, c.seq.Add(1))
	x := newTx(c, id, t, unlock)
	gen := c.membership.Load()
	ws := c.writeSet.Load()
	m, rd := protocol.Start(id, ws.names, writes)
	x.m = m
	x.mu.Lock() // an exclusion may step x as soon as it is stored
	c.txs.Store(id, x)
	c.holding.Add(1)
	c.enter(protocol.Preparing)
	waits := c.queue(x, rd)
	x.mu.Unlock()
	c.startGate.RUnlock()
	c.carryOut(x, rd, waits)
	if c.membership.Load() != gen {
		// The write set changed as x started: an exclusion that stepped
		// the transactions before x was stored has not told x.
		for _, m := range ws.members {
			if m.excluded.Load() {
				x.step(protocol.Event{Kind: protocol.EvExcluded, From: m.Name})
			}
		}
	}

	select {
	case r := <-x.reply:
		if r.ReadOnly {
			if err := c.confirmLeader(ctx); err != nil {
				return Result{}, err
			}
		}
		return replyResult(r)
	case <-ctx.Done():
		return Result{}, fmt.Errorf("%w: stopped waiting: %w", ErrOutcomeUnknown, ctx.Err())
	case <-c.ctx.Done():
		return Result{}, fmt.Errorf("%w: the coordinator is stopping; recovery will finish it", ErrOutcomeUnknown)
	}
}

func replyResult(r protocol.Reply) (Result, error) {
	switch r.Kind {
	case protocol.ReplyCommitted:
		return Result{Succeeded: r.Succeeded, Results: r.Results}, nil
	case protocol.ReplyUnknown:
		return Result{}, fmt.Errorf("%w: decision log failed: %s", ErrOutcomeUnknown, r.Reason)
	}
	cause := ErrUnavailable
	switch r.Cause {
	case protocol.CauseConflict:
		cause = ErrConflict
	case protocol.CauseDiverged:
		cause = ErrDiverged
	case protocol.CauseTooLarge:
		cause = ErrTooLarge
	}
	return Result{}, fmt.Errorf("%w: %s", cause, r.Reason)
}

// Put stores value under key on every participant, or on none.
func (c *Coordinator) Put(ctx context.Context, key string, value protocol.Value) error {
	_, err := c.Txn(ctx, &protocol.Txn{Success: []protocol.Op{{Kind: protocol.OpPut, Key: key, Value: value}}})
	return err
}

// Delete removes key on every participant, or on none, and reports
// whether it had a value.
func (c *Coordinator) Delete(ctx context.Context, key string) (existed bool, err error) {
	r, err := c.Txn(ctx, &protocol.Txn{Success: []protocol.Op{{Kind: protocol.OpDelete, Key: key}}})
	if err != nil {
		return false, err
	}
	return r.Results[0].Existed, nil
}

// Get returns key's value as of some instant during the call
// (linearizable): from the cache of committed values if it is there, else
// from one participant.
func (c *Coordinator) Get(ctx context.Context, key string) (protocol.Value, error) {
	if c.ctx.Err() != nil {
		return protocol.Value{}, ErrStopped
	}
	if err := c.confirmLeader(ctx); err != nil {
		return protocol.Value{}, err
	}
	if e, ok := c.cache.get(key); ok {
		c.cstats.hits.Add(1)
		if !e.found {
			return protocol.Value{}, ErrNotFound
		}
		return e.value, nil
	}
	c.cstats.misses.Add(1)
	entries, err := c.snapshot(ctx, []string{key})
	if err != nil {
		return protocol.Value{}, err
	}
	if !entries[key].Found {
		return protocol.Value{}, ErrNotFound
	}
	return entries[key].Value, nil
}

// flushable is a participant transport that may hold commits and aborts
// back for a moment to batch them (peer.Client does).
type flushable interface{ Flush() }

// flush makes lingering COMMIT records durable and sends held-back
// commits and aborts now: a transaction is waiting for a key that one of
// them still holds.
func (c *Coordinator) flush() {
	c.cfg.Log.Flush()
	for _, m := range c.roster.Load().members {
		if f, ok := m.Participant.(flushable); ok {
			f.Flush()
		}
	}
}

var errInDoubt = errors.New("recovery has not resolved it yet")
