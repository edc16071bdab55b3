package participant

import (
	"bytes"
	"fmt"
	"time"

	"github.com/twopc/twopc/protocol"
)

// A step of an apply cycle (apply.go) runs beside the writer goroutine,
// on a SQLite connection of its own, so that the prepares and commits
// that arrive meanwhile do not wait for it. In the writer's batch, a
// step (a few hundred keys written into kv, then a WAL fsync) took 6 ms
// where a batch of votes alone took 0.8, and under 8-put transactions
// steps held each participant's writer 16% of the time (issue 15).
//
// The writer stays the only one to change its memory. It hands a step
// the writes of its range as over holds them, and goes on; the step
// writes them into kv and commits; then the writer, told so, drops from
// over each key whose write is still the one the step wrote (a key
// committed again meanwhile keeps its newer write). Until then over
// still holds every write the step writes, and readers look in over
// before kv, so kv changing under them changes nothing they see. The
// writes were durable in the vote log before the step was handed them.
//
// One step runs at a time, and the writer begins no SQLite transaction
// of its own (a whole apply, a catch-up, a term raise, a vote log
// rotation) while one runs: it waits for the step first (wtx.exec), so
// kv's writes stay in commit order, the writer's cache of kv stays
// right, and neither waits for the other in SQLite's busy handler.

// step is one range of a cycle, handed to the applier.
type step struct {
	writes []protocol.Write
	last   bool  // the cycle's last range: the cycle is done after it
	upTo   int64 // the cycle's applyCycle.upTo
}

// stepDone is a step's outcome, for the writer.
type stepDone struct {
	*step
	took time.Duration
	err  error
}

// stepIfDue hands the next step of an apply cycle to the applier, if one
// is due and none runs. It runs on the writer goroutine, between batches:
// every write it hands is durable.
func (s *Store) stepIfDue() {
	if s.stepping != nil || s.applyEvery < 0 || s.failed.Load() != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stepDueLocked() {
		return
	}
	st := s.takeStepLocked()
	if len(st.writes) == 0 { // a range left empty: nothing to write, or to show
		_ = s.finishStepLocked(stepDone{step: st}) // no error without a commit
		return
	}
	s.stepping = st
	go func() {
		start := time.Now()
		if s.holdStep != nil {
			s.holdStep()
		}
		_, err := s.applier.inTx(func(tx *wtx) error {
			for _, w := range st.writes {
				if err := tx.applyWrite(w); err != nil {
					return err
				}
			}
			return nil
		}, nil)
		s.stepDone <- stepDone{st, time.Since(start), err}
	}()
}

// finishStep takes in the outcome of the step that ran, and shows
// readers what it changed, unless the store has stopped (memory may then
// hold what a failed batch did not make durable). It runs on the writer
// goroutine.
func (s *Store) finishStep(d stepDone) {
	s.mu.Lock()
	err := s.finishStepLocked(d)
	if err == nil && s.failed.Load() == nil {
		s.view.mu.Lock()
		s.publishLocked()
		s.view.mu.Unlock()
	}
	s.mu.Unlock()
	if err != nil {
		s.fail(err) // outside the locks: OnFail may look at the store
	}
}

// awaitStepLocked waits for the step that runs, if any, and takes in its
// outcome; the caller publishes, and stops the store if it failed. The
// writer must not hold SQLite's write lock: the step may be waiting for
// it. So the writer's transactions call it before they begin (wtx.exec).
func (s *Store) awaitStepLocked() error {
	if s.stepping == nil {
		return nil
	}
	if s.awaiting != nil {
		s.awaiting()
	}
	return s.finishStepLocked(<-s.stepDone)
}

// finishStepLocked takes in a step's outcome. A step that failed stops
// the store, as a failed batch does (the caller calls fail).
func (s *Store) finishStepLocked(d stepDone) error {
	s.stepping = nil
	if d.err != nil {
		err := fmt.Errorf("apply step: %w", d.err)
		s.failed.Store(&err)
		return err
	}
	for _, w := range d.writes {
		s.w.cache.set(w.Key, asRead(w)) // kv holds w now, whatever over holds
		if cur, ok := s.over[w.Key]; ok && sameWrite(cur, w) {
			s.dropOver(w.Key)
		}
	}
	if d.last {
		// Every transaction committed before the cycle began is in kv now.
		s.cycle = nil
		s.forgetCommitted(d.upTo)
		s.stats.applies.Add(1)
	}
	if s.observeStep != nil && len(d.writes) > 0 {
		s.observeStep(d.took)
	}
	return nil
}

func sameWrite(a, b protocol.Write) bool {
	return a.Found == b.Found && a.Version == b.Version && a.Value.Binary == b.Value.Binary && bytes.Equal(a.Value.Data, b.Value.Data)
}
