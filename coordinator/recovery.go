package coordinator

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twopc/twopc/protocol"
)

// recover finishes what an earlier incarnation left: every COMMIT without
// END is committed again on its participants (commit is idempotent); every
// STAGED without an outcome is resolved by asking the participants (see
// protocol.Resolving); and transactions of earlier epochs that
// participants still hold prepared but that the log does not name are
// aborted (presumed abort). It all runs in the background; participants'
// own resolvers are the backstop.
//
// The keys of every record are locked before New returns, so that new
// transactions queue behind the outcomes instead of conflicting with them
// at the participants. Records whose key sets overlap share one hold of
// the union of their keys, released when the last of them is done: the
// keys are all free now, so New never waits.
func (c *Coordinator) recover() {
	gone := append(slices.Clone(c.cfg.Excluded), c.cfg.Removed...)
	for _, group := range overlapping(c.cfg.Pending) {
		var keys []string
		for _, rec := range group {
			keys = append(keys, rec.Keys...)
		}
		unlock, _ := c.locks.lockAll(c.ctx, sortedSet(keys), time.Hour, nil)
		var left atomic.Int32
		left.Store(int32(len(group)))
		done := func() {
			if left.Add(-1) == 0 {
				unlock()
			}
		}
		for _, rec := range group {
			var once sync.Once
			x := newTx(c, rec.TxID, nil, func() { once.Do(done) })
			m, rd := protocol.Recover(rec, gone)
			x.m = m
			x.logged = append(x.logged, rec)
			c.txs.Store(x.id, x)
			c.holding.Add(1)
			c.enter(m.State())
			c.carryOut(x, rd, c.queue(x, rd))
		}
	}
	c.goBackground(c.sweep)
}

// overlapping splits recs into groups whose key sets overlap, each in log
// order, the groups in the order of their first record.
func overlapping(recs []protocol.Record) [][]protocol.Record {
	group := make([]int, len(recs)) // union-find over record indexes
	for i := range group {
		group[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		if group[i] != i {
			group[i] = find(group[i])
		}
		return group[i]
	}
	owner := map[string]int{} // key -> a record that writes it
	for i, rec := range recs {
		for _, k := range rec.Keys {
			if j, ok := owner[k]; ok {
				a, b := find(i), find(j)
				group[max(a, b)] = min(a, b)
			} else {
				owner[k] = i
			}
		}
	}
	var out [][]protocol.Record
	at := map[int]int{} // root -> index in out
	for i, rec := range recs {
		r := find(i)
		if _, ok := at[r]; !ok {
			at[r] = len(out)
			out = append(out, nil)
		}
		out[at[r]] = append(out[at[r]], rec)
	}
	return out
}

func sortedSet(keys []string) []string {
	set := map[string]bool{}
	var out []string
	for _, k := range keys {
		if !set[k] {
			set[k] = true
			out = append(out, k)
		}
	}
	sortStrings(out)
	return out
}

// sweep asks each participant, until it answers, which transactions it
// holds prepared, and aborts those this coordinator does not know: of
// earlier epochs, the log does not name them, so they were never
// committed (presumed abort); of this epoch, they have finished, and a
// participant that holds one prepared missed its abort. Then it asks
// again every SweepEvery. Aborts are told once, and a participant that
// missed one asks a coordinator of its list; but when every coordinator
// it was started with has been replaced (several coordinators, each lost
// with its disk in turn), it has nobody to ask, and without the sweep it
// would hold the keys forever. A drill found that.
func (c *Coordinator) sweep() {
	c.goBackground(c.sweepAll) // a participant that is down must not hold up the rounds
	t := time.NewTicker(c.cfg.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			for _, m := range c.roster.Load().members {
				c.sweepOne(m) // a failure waits for the next round
			}
			c.sweeps.Add(1)
		}
	}
}

// sweepAll asks every participant until it answers.
func (c *Coordinator) sweepAll() {
	var wg sync.WaitGroup
	for _, m := range c.roster.Load().members {
		wg.Go(func() {
			delay := c.cfg.RetryInterval
			for c.ctx.Err() == nil {
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
		c.noticeDeposed(err)
		return err
	}
	for _, p := range pts {
		// A transaction of this epoch is stored before its prepares go
		// out, and forgotten once it finished: a commit only once every
		// participant applied it.
		if protocol.EpochOf(p.TxID) <= c.cfg.Epoch && c.lookup(p.TxID) == nil {
			if err := m.Abort(ctx, p.TxID); err != nil {
				return err
			}
		}
	}
	return nil
}
