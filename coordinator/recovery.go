package coordinator

import (
	"context"
	"sync"
	"time"
)

// recover finishes what an earlier incarnation left: every COMMIT without
// END is committed again on its participants (commit is idempotent), and
// transactions of earlier epochs that participants still hold prepared
// but that were never committed are aborted (presumed abort). Both run in
// the background; participants' own resolvers are the backstop.
func (c *Coordinator) recover() {
	for _, rec := range c.cfg.Pending {
		t := newCommitted(rec.TxID, rec.Key)
		c.txs.Store(t.id, t)
		c.inDoubt.Add(1)
		members := c.named(rec.Participants)
		// Hold the key so that new writes queue behind the re-sent commit
		// instead of conflicting with it at the participants.
		unlock, _ := c.locks.lock(c.ctx, rec.Key, c.cfg.LockTimeout, nil)
		c.goBackground(func() {
			c.commitAll(t, members)
			if unlock != nil {
				unlock()
			}
		})
	}
	c.goBackground(c.sweep)
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
