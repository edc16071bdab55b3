package coordinator

import (
	"context"
	"errors"
	"fmt"
	"github.com/twopc/twopc/protocol"
	"slices"
	"sync"
	"time"

	"github.com/twopc/twopc/participant"
)

// recover finishes what an earlier incarnation left: every COMMIT without
// END is committed again on its participants (commit is idempotent); every
// STAGED without an outcome is resolved (see resolve); and transactions of
// earlier epochs that participants still hold prepared but that the log
// does not name are aborted (presumed abort). All of it runs in the
// background, each transaction holding its key; participants' own
// resolvers are the backstop.
func (c *Coordinator) recover() {
	// Records of one key are finished one after the other, in log order,
	// under one hold of the key: it is free now, so New never waits.
	var keys []string
	byKey := map[string][]protocol.Record{}
	for _, rec := range c.cfg.Pending {
		if _, ok := byKey[rec.Keys[0]]; !ok {
			keys = append(keys, rec.Keys[0])
		}
		byKey[rec.Keys[0]] = append(byKey[rec.Keys[0]], rec)
	}
	for _, key := range keys {
		var txs []*txn
		for _, rec := range byKey[key] {
			state := stateCommitted
			if rec.Kind == protocol.KindStaged {
				state = stateResolving
			}
			t := newRecovered(rec.TxID, rec.Keys[0], state)
			c.txs.Store(t.id, t)
			c.inDoubt.Add(1)
			txs = append(txs, t)
		}
		// Hold the key so that new writes queue behind the outcomes
		// instead of conflicting with them at the participants.
		unlock, _ := c.locks.lock(c.ctx, key, c.cfg.LockTimeout, nil)
		c.goBackground(func() {
			for i, t := range txs {
				members := c.named(byKey[key][i].Participants)
				if t.current() == stateResolving {
					c.resolve(t, members)
				} else {
					c.commitAll(t, members)
				}
			}
			if unlock != nil {
				unlock()
			}
		})
	}
	c.goBackground(c.sweep)
}

// resolve decides a STAGED transaction of an earlier life. If every
// participant still holds it prepared, every vote was YES and, since
// aborts are logged before anyone hears of them, nobody was told abort:
// the client may have been told success, so it commits. If one does not
// hold it, that one never voted YES (a participant forgets a prepared
// transaction only when told its outcome, and commit is told only after a
// COMMIT record, which this transaction lacks): no client heard success,
// so it aborts, and the abort's tombstone refuses a prepare still on its
// way. Until every participant answers, the transaction stays in doubt.
func (c *Coordinator) resolve(t *txn, members []*member) {
	delay := c.cfg.RetryInterval
	for {
		held, err := c.heldByAll(t.id, members)
		if err == nil {
			if held && t.decide(stateCommitting) && c.logCommit(t) {
				c.commitAll(t, members)
			}
			if !held && t.decide(stateAborted) && c.logAbort(t) == nil {
				c.inDoubt.Add(-1)
				c.aborted.Add(1)
				c.abortAll(t)
			}
			return
		}
		c.log.Warn("coordinator: cannot resolve a staged transaction yet", "tx", t.id, "err", err)
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// heldByAll reports whether every member holds txid prepared, asking all
// of them at once. One that does not hold it settles the question (abort)
// even while others cannot be reached; "all hold it" needs every answer.
func (c *Coordinator) heldByAll(txid string, members []*member) (bool, error) {
	if c.dead.Load() {
		return false, errCrashed
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.CallTimeout)
	defer cancel()
	type answer struct {
		held bool
		err  error
	}
	answers := make(chan answer, len(members))
	for _, m := range members {
		go func() {
			pts, err := m.PreparedTxs(ctx)
			if err != nil {
				err = fmt.Errorf("%s: %w", m.Name, err)
			}
			held := slices.ContainsFunc(pts, func(p participant.PreparedTx) bool { return p.TxID == txid })
			answers <- answer{held, err}
		}()
	}
	var errs []error
	for range members {
		a := <-answers
		switch {
		case a.err != nil:
			errs = append(errs, a.err)
		case !a.held:
			return false, nil
		}
	}
	return true, errors.Join(errs...)
}

// named returns the configured members with the given names. A name that
// is no longer configured cannot be told the outcome: the transaction
// stays in doubt, visible in status, rather than be declared finished.
func (c *Coordinator) named(names []string) []*member {
	var out []*member
	for _, n := range names {
		found := false
		for _, m := range c.members {
			if m.Name == n {
				out = append(out, m)
				found = true
			}
		}
		if !found {
			c.log.Error("coordinator: committed transaction names a participant that is not configured; it stays in doubt", "participant", n)
			out = append(out, &member{Member: Member{Name: n, Participant: unconfigured{n}}})
		}
	}
	return out
}

// sweep asks each participant, until it answers, which transactions it
// holds prepared, and aborts those of earlier epochs that were not
// committed. Without it they would wait for the participant's resolver.
func (c *Coordinator) sweep() {
	var wg sync.WaitGroup
	for _, m := range c.members {
		wg.Go(func() {
			delay := c.cfg.RetryInterval
			for c.ctx.Err() == nil && !c.dead.Load() {
				if c.sweepOne(m) == nil {
					return
				}
				select {
				case <-c.ctx.Done():
				case <-time.After(delay):
				}
				delay = min(2*delay, 5*time.Second)
			}
		})
	}
	wg.Wait()
}

func (c *Coordinator) sweepOne(m *member) error {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.CallTimeout)
	defer cancel()
	pts, err := m.PreparedTxs(ctx)
	if err != nil {
		return err
	}
	for _, p := range pts {
		if txEpoch(p.TxID) < c.cfg.Epoch && c.lookup(p.TxID) == nil {
			if err := m.Abort(ctx, p.TxID); err != nil {
				return err
			}
		}
	}
	return nil
}
