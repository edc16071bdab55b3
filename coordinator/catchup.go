package coordinator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twopc/twopc/protocol"
)

// This file brings an excluded participant back into the write set.
//
// Once it answers again, it catches up from a source, a participant in
// the write set, while writes go on without it:
//
//  1. Reset: it drops everything it held, data and prepared transactions
//     alike (the copy supersedes them), and from then on refuses prepares
//     of transactions issued before now (the fence), so that a prepare
//     delayed from before its exclusion cannot land on the copy.
//  2. Copy: the source's keys, page by page (Scan), each at its current
//     entry (what a read would return: a key held by a committed
//     transaction is copied at the entry that transaction leaves).
//  3. Catch up: every transaction that releases its keys from step 1 on
//     marks them dirty; passes copy the dirty keys again, until few are
//     left.
//  4. Include: new transactions wait a moment (the start gate), those
//     already started finish, the last dirty keys are copied, and the
//     include record is made durable. Then the participant is in the
//     write set: transactions started from then on need its vote.
//
// Why it is exact: a key's copy is read after the key was marked dirty,
// and a transaction marks its keys only once its outcome is decided, so
// every copy of a key is at least as new as the last outcome marked
// before it; the last pass runs while no transaction is running. The
// copy is read from one source, which must stay in the write set all
// along: if it is excluded meanwhile, the catch-up starts over.
//
// Any failure (the participant or the source stops answering, the
// coordinator stops) abandons the attempt; the next starts over from
// the reset. The participant stays excluded until an include record is
// durable, so a coordinator killed mid-copy leaves it excluded.

// Catch-up sizes. A page of 5,000 keys with 64-byte values is about
// 500 KB of XML (a scan also stops at participant.ScanBytes of values);
// dirty keys are read in smaller chunks because a read has no byte bound
// of its own.
const (
	catchUpPage       = 5000
	catchUpChunk      = 256
	catchUpFinalKeys  = 512 // dirty keys few enough to copy while writes wait
	catchUpMaxPasses  = 20
	catchUpMaxBackoff = 10 * time.Second
)

// dirtyKeys are the keys of transactions released since a catch-up began.
type dirtyKeys struct {
	mu   sync.Mutex
	keys map[string]struct{}
}

func (d *dirtyKeys) add(keys []string) {
	d.mu.Lock()
	for _, k := range keys {
		d.keys[k] = struct{}{}
	}
	d.mu.Unlock()
}

// take returns the dirty keys, sorted, and forgets them.
func (d *dirtyKeys) take() []string {
	d.mu.Lock()
	keys := make([]string, 0, len(d.keys))
	for k := range d.keys {
		keys = append(keys, k)
	}
	clear(d.keys)
	d.mu.Unlock()
	sortStrings(keys)
	return keys
}

func (d *dirtyKeys) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.keys)
}

// released is called once per machine when its keys are released: it
// marks them dirty for a catch-up, and wakes a catch-up waiting for
// every running transaction to finish.
func (c *Coordinator) released(t *tx) {
	if d := c.dirty.Load(); d != nil {
		d.add(t.m.Keys())
	}
	if c.holding.Add(-1) == 0 {
		c.drainMu.Lock()
		if c.drained != nil {
			close(c.drained)
			c.drained = nil
		}
		c.drainMu.Unlock()
	}
}

// drain waits until no transaction holds keys, within timeout. The
// caller holds the start gate, so none starts meanwhile.
func (c *Coordinator) drain(timeout time.Duration) error {
	c.drainMu.Lock()
	if c.holding.Load() == 0 {
		c.drainMu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	c.drained = ch
	c.drainMu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		c.drainMu.Lock()
		c.drained = nil
		c.drainMu.Unlock()
		return fmt.Errorf("%d transactions still running after %v", c.holding.Load(), timeout)
	case <-c.ctx.Done():
		return ErrStopped
	}
}

// rejoin tries to bring m back, once; on failure the next try waits
// longer. The watcher calls it, one participant at a time.
func (c *Coordinator) rejoin(m *member) {
	defer c.rejoining.Store(false)
	err := c.catchUp(m)
	if err == nil {
		m.rejoinFails.Store(0)
		return
	}
	n := m.rejoinFails.Add(1)
	backoff := min(max(c.cfg.RetryInterval, 100*time.Millisecond)<<min(n-1, 16), catchUpMaxBackoff)
	m.nextRejoin.Store(time.Now().Add(backoff).UnixNano())
	if c.ctx.Err() == nil && !errors.Is(err, errNoAnswer) {
		c.log.Warn("participant could not catch up; will try again", "participant", m.Name, "err", err, "retry_in", backoff)
	}
}

// errNoAnswer: the participant is still down; not worth a warning.
var errNoAnswer = errors.New("does not answer")

// catchUp runs the four steps above.
func (c *Coordinator) catchUp(m *member) error {
	if !m.excluded.Load() {
		return fmt.Errorf("%s is in the write set: nothing to catch up", m.Name)
	}
	ctx := c.ctx
	probe, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	_, err := m.PreparedTxs(probe)
	cancel()
	if err != nil {
		return fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	src := c.catchUpSource()
	if src == nil {
		return errors.New("no participant in the write set to copy from")
	}
	d := &dirtyKeys{keys: map[string]struct{}{}}
	c.dirty.Store(d)
	defer c.dirty.Store(nil)
	m.catchingUp.Store(true)
	defer m.catchingUp.Store(false)
	start := time.Now()
	c.log.Info("participant catching up", "participant", m.Name, "source", src.Name)
	c.cfg.Observer.Membership(m.Name, StateCatchingUp)

	// The fence: every transaction sent to m before its exclusion has an
	// id below it; every one it will be sent after the include, above;
	// and every step of this catch-up carries it, so that m can refuse a
	// step of an earlier one that the network delayed (its own id, taken
	// from the sequence, is greater than any earlier catch-up's).
	fence := protocol.NewTxID(c.cfg.Epoch, c.seq.Add(1))
	if err := c.install(ctx, m, &protocol.Install{Reset: true, Fence: fence}); err != nil {
		return err
	}
	copied, err := c.copyAll(ctx, src, m, fence)
	if err != nil {
		return err
	}
	passes := 0
	for ; passes < catchUpMaxPasses && d.len() > catchUpFinalKeys; passes++ {
		n, err := c.copyKeys(ctx, src, m, fence, d.take())
		if err != nil {
			return err
		}
		copied += n
	}
	paused, n, err := c.include(ctx, src, m, fence, d)
	if err != nil {
		return err
	}
	c.log.Info("participant caught up and back in the write set", "participant", m.Name, "source", src.Name,
		"keys_copied", copied+n, "passes", passes+1, "took", time.Since(start).Round(time.Millisecond),
		"writes_paused", paused.Round(time.Microsecond), "write_set", c.writeSet.Load().names)
	return nil
}

// catchUpSource picks the participant in the write set to copy from.
func (c *Coordinator) catchUpSource() *member {
	ws := c.writeSet.Load().members
	if len(ws) == 0 {
		return nil
	}
	return ws[int(c.rr.Add(1)%uint64(len(ws)))]
}

// include is step 4. It returns how long new writes waited and how many
// keys it copied.
func (c *Coordinator) include(ctx context.Context, src, m *member, fence string, d *dirtyKeys) (time.Duration, int, error) {
	c.membersMu.Lock() // membership changes one at a time
	defer c.membersMu.Unlock()
	c.startGate.Lock()
	defer c.startGate.Unlock()
	start := time.Now()
	if src.excluded.Load() {
		return 0, 0, fmt.Errorf("the source %s was excluded during the copy", src.Name)
	}
	if m.removed.Load() {
		return 0, 0, fmt.Errorf("%s was removed during the copy", m.Name)
	}
	if err := c.drain(c.cfg.CallTimeout); err != nil {
		return 0, 0, err
	}
	n, err := c.copyKeys(ctx, src, m, fence, d.take())
	if err != nil {
		return 0, 0, err
	}
	if err := c.cfg.Log.Append(protocol.Record{Kind: protocol.KindInclude, Participants: []string{m.Name}}); err != nil {
		if c.ctx.Err() == nil {
			c.cfg.Fatal(err)
		}
		return 0, 0, err
	}
	m.excluded.Store(false)
	m.lastOK.Store(time.Now().UnixNano())
	c.setWriteSet()
	c.membership.Add(1)
	c.cfg.Observer.Membership(m.Name, StateActive)
	return time.Since(start), n, nil
}

// copyAll is step 2: every key of src, at its current entry, to m. The
// next page is read from src while m installs this one.
func (c *Coordinator) copyAll(ctx context.Context, src, m *member, fence string) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type page struct {
		writes []protocol.Write
		err    error
	}
	pages := make(chan page, 2)
	go func() {
		defer close(pages)
		after := ""
		for {
			sctx, done := context.WithTimeout(ctx, c.cfg.CallTimeout)
			states, more, err := src.Scan(sctx, after, c.cfg.catchUpPage)
			done()
			var writes []protocol.Write
			if err != nil {
				err = fmt.Errorf("scan of %s: %w", src.Name, err)
			} else {
				writes, err = c.current(ctx, src, states)
			}
			select {
			case pages <- page{writes, err}:
			case <-ctx.Done():
				return
			}
			if err != nil || !more || len(states) == 0 {
				return
			}
			after = states[len(states)-1].Key
		}
	}()
	n := 0
	for {
		start := time.Now()
		p, ok := <-pages
		if !ok {
			return n, ctx.Err()
		}
		if p.err != nil {
			return n, p.err
		}
		if err := c.install(ctx, m, &protocol.Install{Fence: fence, Writes: p.writes}); err != nil {
			return n, err
		}
		n += len(p.writes)
		// Rest as long as the page took: the copy works half the time at
		// most, so that on a busy machine the writes it shares the cores
		// with keep more than half their rate (bench/catchup.sh: 0.46x
		// without the rest; a million keys copied in 10 s).
		select {
		case <-time.After(time.Since(start)):
		case <-ctx.Done():
			return n, ctx.Err()
		}
	}
}

// copyKeys copies keys from src to m at their current entries (a key
// src does not have is deleted at m).
func (c *Coordinator) copyKeys(ctx context.Context, src, m *member, fence string, keys []string) (int, error) {
	for i := 0; i < len(keys); i += catchUpChunk {
		chunk := keys[i:min(i+catchUpChunk, len(keys))]
		entries, err := c.readFrom(ctx, src, chunk)
		if err != nil {
			return i, fmt.Errorf("read of %s: %w", src.Name, err)
		}
		writes := make([]protocol.Write, len(chunk))
		for j, k := range chunk {
			writes[j] = protocol.Write{Key: k, Entry: entries[k]}
		}
		if err := c.install(ctx, m, &protocol.Install{Fence: fence, Writes: writes}); err != nil {
			return i, err
		}
	}
	return len(keys), nil
}

// current turns a page of a scan into the writes that copy it: a key
// that a transaction holds is read again, so that readFrom can tell
// which of its entries is current.
func (c *Coordinator) current(ctx context.Context, src *member, states []protocol.KeyState) ([]protocol.Write, error) {
	writes := make([]protocol.Write, 0, len(states))
	var held []string
	for _, ks := range states {
		if ks.Pending != "" {
			held = append(held, ks.Key)
		} else if ks.Entry.Found {
			writes = append(writes, protocol.Write{Key: ks.Key, Entry: ks.Entry})
		}
	}
	if len(held) == 0 {
		return writes, nil
	}
	entries, err := c.readFrom(ctx, src, held)
	if err != nil {
		return nil, fmt.Errorf("read of %s: %w", src.Name, err)
	}
	for _, k := range held {
		if e := entries[k]; e.Found {
			writes = append(writes, protocol.Write{Key: k, Entry: e})
		}
	}
	return writes, nil
}

func (c *Coordinator) install(ctx context.Context, m *member, in *protocol.Install) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	if err := m.Install(ctx, in); err != nil {
		return fmt.Errorf("install at %s: %w", m.Name, err)
	}
	return nil
}
