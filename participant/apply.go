package participant

import (
	"context"
	"database/sql"
	"slices"
	"sync"
	"time"

	"github.com/twopc/twopc/protocol"
)

// Committed writes reach kv lazily. A commit is a line in the vote log
// (votelog.go), where writing each key into kv at once wrote one random
// page of kv per key. The writes wait in memory (Store.over) and go to
// kv about once a second, so that a hot page of kv is written once for
// many transactions.
//
// An apply cycle sorts the keys waiting and goes through them in
// applySteps ranges, one range every applyEvery/applySteps, each in a
// SQLite transaction of its own, beside the writer (applier.go): each
// page of kv is still written once a cycle, while no batch waits for it.
// A key committed again during the cycle, in a range already done, waits
// for the next one.
// Once the last range is done, every transaction committed before the
// cycle began is wholly in kv, and its id is forgotten.
//
// Keys first committed during the cycle (late) go with their range when
// it comes, but a step takes at most as many of them as its range has
// keys of its own (lateBudget at least): the rest wait for the next
// cycle. Without that bound the ranges drift apart: the keys a cycle
// starts with are mostly those of the last cycle's ranges already done,
// so they crowd the low end of the key space, its last range grows to
// cover the rest, and its step took every late key there. Under 8-put
// transactions a participant's last step took 5,000-8,600 keys and
// 50-150 ms, once a cycle: most of the commit latency's p99 (issue 15).
//
// Open replays the vote log back into memory, in order, so that the
// latest write of each key wins, as it does in kv; Close applies
// everything, so that a cleanly closed database holds all its committed
// data in kv.

// Apply thresholds: a cycle begins once the oldest write waiting is
// applyEvery old; when too many writes or bytes wait, all of them are
// applied in the next batch (memory stays bounded).
const (
	defaultApplyEvery = time.Second
	applySteps        = 32
	lateBudget        = 64 // late keys a step may always take (more if its range has more keys of its own)
	maxUnapplied      = 16384
	maxUnappliedBytes = 16 << 20
)

// applyCycle is one pass of over through kv, range by range: range i
// is keys[i*n/applySteps : (i+1)*n/applySteps] of the n keys waiting
// when it began, in order, and the keys that came since (late) and fall
// between that range's first key and the next range's.
type applyCycle struct {
	keys []string
	late []string
	next int   // the range to apply next
	upTo int64 // the last commit (committed.seq) before the cycle began
	last time.Time
}

// rangeOf returns range i's keys and bounds: [lo, hi), lo "" at the
// start and hi "" at the end. The ranges' bounds tile the key space,
// since range i+1 starts where range i's keys end.
func (c *applyCycle) rangeOf(i int) (keys []string, lo, hi string) {
	a, b := i*len(c.keys)/applySteps, (i+1)*len(c.keys)/applySteps
	if i > 0 {
		lo = c.keys[a]
	}
	if i < applySteps-1 {
		hi = c.keys[b]
	}
	return c.keys[a:b], lo, hi
}

// view is what readers (Read, Scan, Digest) see of the writer's memory,
// as of the last SQLite commit: the writer changes it only after a
// commit, and holds mu across the commit of a batch that applies, so
// that a reader holding mu.RLock sees kv and over from the same moment.
type view struct {
	mu      sync.RWMutex
	over    map[string]protocol.Write // committed, not yet in kv
	pending map[string]pendingWrite   // key -> the prepared write holding it
}

type pendingWrite struct {
	txid string
	next protocol.Entry
}

func newView() *view {
	return &view{over: map[string]protocol.Write{}, pending: map[string]pendingWrite{}}
}

// entry is a committed write as the entry it leaves.
func entry(w protocol.Write) protocol.Entry {
	return protocol.Entry{Found: w.Found, Value: w.Value, Version: w.Version}
}

// committedLocked moves a committed transaction's writes to over, where
// an apply will find them (its commit record is the caller's). s.mu is
// held, or the store is opening.
func (s *Store) committedLocked(txid string, p *preparedTx) {
	s.seq++
	s.committed[txid] = true
	s.committedOrder = append(s.committedOrder, seqID{s.seq, txid})
	if s.waitingSince.IsZero() {
		s.waitingSince = time.Now()
	}
	for _, w := range p.writes {
		s.setOver(w)
	}
	s.unlockLocked(txid, p)
}

func (s *Store) setOver(w protocol.Write) {
	if old, ok := s.over[w.Key]; ok {
		s.overBytes -= len(old.Key) + len(old.Value.Data)
	} else if s.cycle != nil {
		s.cycle.late = append(s.cycle.late, w.Key)
	}
	s.over[w.Key] = w
	s.overBytes += len(w.Key) + len(w.Value.Data)
}

func (s *Store) dropOver(key string) {
	if old, ok := s.over[key]; ok {
		s.overBytes -= len(old.Key) + len(old.Value.Data)
		delete(s.over, key)
		s.touch(key)
	}
}

// applyDueLocked applies every committed write waiting, in the batch's
// transaction, when tests ask for it at every batch or when too many
// wait, and says whether kv changed. Steps of a cycle run beside the
// writer (applier.go).
func (s *Store) applyDueLocked(tx *wtx) (bool, error) {
	if s.applyEvery < 0 { // tests: everything, every batch
		if len(s.over) == 0 {
			return false, nil
		}
		return true, s.applyAllLocked(tx)
	}
	if s.overBoundLocked() {
		// A step at a time would let over grow by many batches' writes
		// meanwhile: all of it now, in this batch, bounds it (after the
		// step that runs, if one does: wtx.exec waits for it).
		return true, s.applyAllLocked(tx)
	}
	return false, nil
}

func (s *Store) overBoundLocked() bool {
	return len(s.over) >= maxUnapplied || s.overBytes >= maxUnappliedBytes
}

// stepDueLocked says whether a step of a cycle is due, and begins the
// cycle if it is its first.
func (s *Store) stepDueLocked() bool {
	switch {
	case s.cycle == nil && (len(s.over) == 0 || !s.stepEveryBatch && time.Since(s.waitingSince) < s.applyEvery):
		return false
	case s.cycle == nil:
		s.startCycle()
	case !s.stepEveryBatch && time.Since(s.cycle.last) < s.applyEvery/applySteps:
		return false
	}
	return true
}

func (s *Store) startCycle() {
	keys := make([]string, 0, len(s.over))
	for k := range s.over {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s.cycle = &applyCycle{keys: keys, upTo: s.seq}
	s.waitingSince = time.Time{} // commits from now on wait for the next cycle
}

// takeStepLocked takes the cycle's next range: the writes the applier is
// to copy into kv. They stay in over until it has (finishStepLocked).
func (s *Store) takeStepLocked() *step {
	c := s.cycle
	keys, lo, hi := c.rangeOf(c.next)
	st := &step{upTo: c.upTo}
	// take takes k's waiting write, if it still waits, and says so.
	take := func(k string) bool {
		w, ok := s.over[k]
		if ok {
			st.writes = append(st.writes, w)
		}
		return ok
	}
	for _, k := range keys {
		take(k)
	}
	late := c.late[:0]
	budget := max(len(keys), lateBudget)
	for _, k := range c.late {
		if k < lo || hi != "" && k >= hi || budget == 0 {
			late = append(late, k) // a later range's, a past one's, or over budget (next cycle)
			continue
		}
		if take(k) {
			budget--
		}
	}
	c.late = late
	c.next++
	c.last = time.Now()
	st.last = c.next == applySteps
	return st
}

// applyAllLocked writes every committed write waiting in memory to kv,
// in tx.
func (s *Store) applyAllLocked(tx *wtx) error {
	for _, w := range s.over {
		if err := tx.applyWrite(w); err != nil {
			return err
		}
	}
	clear(s.over)
	s.overBytes = 0
	s.cycle = nil
	s.waitingSince = time.Time{}
	s.rebuild = true
	s.forgetCommitted(s.seq)
	s.stats.applies.Add(1)
	return nil
}

// forgetCommitted forgets the ids of the transactions committed up to
// seq, whose writes are all in kv: a prepare repeated after that is no
// longer recognised (as after a restart).
func (s *Store) forgetCommitted(seq int64) {
	n := 0
	for n < len(s.committedOrder) && s.committedOrder[n].seq <= seq {
		delete(s.committed, s.committedOrder[n].txid)
		n++
	}
	s.committedOrder = slices.Delete(s.committedOrder, 0, n)
}

// seqID is a committed transaction and its place in commit order.
type seqID struct {
	seq  int64
	txid string
}

// touch notes that key's state changed in this batch, for publishLocked.
func (s *Store) touch(key string) { s.touched = append(s.touched, key) }

// publishLocked shows readers the state the batch just committed: each
// key it touched as the writer now holds it, or everything after an
// apply or a catch-up reset. The caller holds s.view.mu.
func (s *Store) publishLocked() {
	v := s.view
	if s.rebuild {
		clear(v.over)
		for k, w := range s.over {
			v.over[k] = w
		}
		clear(v.pending)
		for k := range s.locks {
			s.touch(k)
		}
	}
	for _, k := range s.touched {
		if w, ok := s.over[k]; ok {
			v.over[k] = w
		} else {
			delete(v.over, k)
		}
		if txid, ok := s.locks[k]; ok {
			v.pending[k] = pendingWrite{txid: txid, next: s.prepared[txid].next(k)}
		} else {
			delete(v.pending, k)
		}
	}
	s.touched = s.touched[:0]
	s.rebuild = false
}

// next is the entry key will have once p commits.
func (p *preparedTx) next(key string) protocol.Entry {
	for _, w := range p.writes {
		if w.Key == key {
			return entry(w)
		}
	}
	return protocol.Entry{}
}

// applyAtClose applies what waits, so that a cleanly closed database
// holds all its committed data in kv, and its vote log only what is
// prepared.
func (s *Store) applyAtClose() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.awaitStepLocked(); err != nil { // before the applier's connection closes
		return err
	}
	if len(s.over) == 0 && s.seq == 0 || s.failed.Load() != nil {
		return nil
	}
	_, err := s.w.inTx(func(tx *wtx) error {
		if err := s.applyAllLocked(tx); err != nil {
			return err
		}
		s.rotateVotes = true // to a vote log of the prepared alone
		return s.makeDurable(tx)
	}, nil)
	if err == nil {
		err = s.votes.retire()
	}
	return err
}

// pin starts tx's snapshot of kv and copies what the view holds of the
// keys after `after`, both under the view's read lock, so that they are
// of one moment; the caller then reads kv without holding the writer up.
func (s *Store) pin(ctx context.Context, tx *sql.Tx, after string) ([]protocol.Write, map[string]pendingWrite, error) {
	s.view.mu.RLock()
	defer s.view.mu.RUnlock()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM meta`).Scan(&n); err != nil {
		return nil, nil, err
	}
	var over []protocol.Write
	for k, w := range s.view.over {
		if k > after {
			over = append(over, w)
		}
	}
	slices.SortFunc(over, func(a, b protocol.Write) int { return cmpString(a.Key, b.Key) })
	pending := map[string]pendingWrite{}
	for k, p := range s.view.pending {
		if k > after {
			pending[k] = p
		}
	}
	return over, pending, nil
}

// upTo cuts writes sorted by key after key upTo ("": no cut).
func upTo(ws []protocol.Write, key string) []protocol.Write {
	if key == "" {
		return ws
	}
	i, _ := slices.BinarySearchFunc(ws, key, func(w protocol.Write, k string) int { return cmpString(w.Key, k) })
	for i < len(ws) && ws[i].Key == key {
		i++
	}
	return ws[:i]
}

// withPending adds to states, in key order, the prepared writes of
// pending up to key last ("": all): each key's Pending and Next.
func withPending(states []protocol.KeyState, pending map[string]pendingWrite, last string) []protocol.KeyState {
	at := make(map[string]int, len(states))
	for i, ks := range states {
		at[ks.Key] = i
	}
	added := false
	for k, p := range pending {
		if last != "" && k > last {
			continue
		}
		if i, ok := at[k]; ok {
			states[i].Pending, states[i].Next = p.txid, p.next
			continue
		}
		states = append(states, protocol.KeyState{Key: k, Pending: p.txid, Next: p.next})
		added = true
	}
	if added {
		slices.SortFunc(states, func(a, b protocol.KeyState) int { return cmpString(a.Key, b.Key) })
	}
	return states
}
