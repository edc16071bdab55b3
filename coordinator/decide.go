package coordinator

import (
	"context"
	"github.com/twopc/twopc/protocol"
	"sync"
	"time"
)

// commitAll sends commit to members in parallel. Those that do not
// acknowledge are retried in the background, with backoff, until they do;
// then the transaction is forgotten and END logged. It reports whether
// every member acknowledged at the first try.
func (c *Coordinator) commitAll(t *txn, members []*member) bool {
	missing := c.sendAll(members, func(ctx context.Context, m *member) error {
		if c.crashAt("commit:" + m.Name) {
			return errCrashed
		}
		return m.Commit(ctx, t.id)
	})
	if c.dead.Load() {
		return false
	}
	if len(missing) > 0 {
		c.goBackground(func() { c.resend(t, missing) })
		return false
	}
	c.finish(t)
	return true
}

// resend retries commit to members until all of them acknowledge or the
// coordinator stops (a restart resumes from the log).
func (c *Coordinator) resend(t *txn, members []*member) {
	delay := c.cfg.RetryInterval
	for len(members) > 0 {
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
		members = c.sendAll(members, func(ctx context.Context, m *member) error { return m.Commit(ctx, t.id) })
		if c.dead.Load() {
			return
		}
	}
	c.finish(t)
}

// finish forgets a committed transaction that every participant applied.
func (c *Coordinator) finish(t *txn) {
	if c.crashAt("before-end") {
		return
	}
	// END may be lost in a crash: recovery then re-sends an idempotent
	// commit, so it needs no fsync of its own.
	if err := c.cfg.Log.AppendAsync(protocol.Record{Kind: protocol.KindEnd, TxID: t.id}); err != nil {
		c.cfg.Fatal(err)
		return
	}
	c.txs.Delete(t.id)
	c.inDoubt.Add(-1)
	c.committed.Add(1)
}

// abortAll tells every participant to drop t. Failures are left to the
// participants, which ask for the outcome of what they hold prepared.
func (c *Coordinator) abortAll(t *txn) {
	failed := c.sendAll(c.members, func(ctx context.Context, m *member) error { return m.Abort(ctx, t.id) })
	if len(failed) > 0 && c.ctx.Err() == nil {
		c.log.Warn("coordinator: abort not delivered; participants will ask", "tx", t.id, "participants", len(failed))
	}
	c.txs.Delete(t.id)
}

// sendAll runs send for each member in parallel, each bounded by the call
// timeout, and returns the members for which it failed.
func (c *Coordinator) sendAll(members []*member, send func(context.Context, *member) error) []*member {
	var (
		mu     sync.Mutex
		failed []*member
		wg     sync.WaitGroup
	)
	for _, m := range members {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(c.ctx, c.cfg.CallTimeout)
			defer cancel()
			var err error
			if c.dead.Load() {
				err = errCrashed
			} else {
				m.inflight.Add(1)
				err = send(ctx, m)
				m.inflight.Add(-1)
			}
			if err != nil {
				mu.Lock()
				failed = append(failed, m)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failed
}
