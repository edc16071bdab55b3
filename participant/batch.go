package participant

import (
	"context"
	"fmt"
	"time"

	"github.com/twopc/twopc/protocol"
)

// request is one change waiting for the writer goroutine.
type request struct {
	kind     protocol.MsgKind // prepare, commit or abort, unless install is set
	txid     string
	txn      *protocol.Txn     // prepare only
	install  *protocol.Install // a catch-up step (catchup.go)
	term     uint64            // the sender's (0: none)
	termOnly bool              // nothing to do but raise the term seen (term.go)

	vote protocol.Vote // prepare's answer
	err  error         // set by the writer
	done chan struct{}
}

// Prepare runs t on this replica's data, under its lock table: if another
// transaction holds one of t's keys prepared, the vote is a conflict NO;
// if t was aborted here, a NO; if the branch that runs writes nothing,
// a read-only vote and nothing is kept; else its writes are recorded
// durably and the keys locked, and the vote is YES. Votes carry the
// branch that ran and each op's result, which every replica must agree on.
func (s *Store) Prepare(ctx context.Context, txid string, t *protocol.Txn) (protocol.Vote, error) {
	r := &request{kind: protocol.MsgPrepare, txid: txid, txn: t, term: protocol.TermOf(ctx)}
	if err := s.submit(ctx, r); err != nil {
		return protocol.Vote{}, err
	}
	return r.vote, r.err
}

// Commit makes txid's prepared writes the keys' committed entries (in kv
// at the next apply: apply.go) and unlocks the keys.
// Committing a transaction that is not prepared here is a no-op: it was
// committed before (commit is idempotent).
func (s *Store) Commit(ctx context.Context, txid string) error {
	return s.submitOne(ctx, &request{kind: protocol.MsgCommit, txid: txid, term: protocol.TermOf(ctx)})
}

// Abort discards txid's prepared writes, if any, unlocks their keys and
// remembers txid so that a late prepare for it is refused.
func (s *Store) Abort(ctx context.Context, txid string) error {
	return s.submitOne(ctx, &request{kind: protocol.MsgAbort, txid: txid, term: protocol.TermOf(ctx)})
}

func (s *Store) submitOne(ctx context.Context, r *request) error {
	if err := s.submit(ctx, r); err != nil {
		return err
	}
	return r.err
}

// submit hands rs to the writer as one unit, so that they share one
// batch, and waits for their durable results. Once the writer has taken
// them, the wait does not honour ctx: the outcome is decided in one
// batch, and abandoning it would hide a YES vote.
// The error is the unit's (closed store); each request has its own.
func (s *Store) submit(ctx context.Context, rs ...*request) error {
	for _, r := range rs {
		r.done = make(chan struct{})
	}
	select {
	case s.reqs <- rs:
	case <-s.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, r := range rs {
		select {
		case <-r.done:
		case <-s.done:
			return ErrClosed
		}
	}
	return nil
}

// run is the writer goroutine: it takes every request waiting at that
// moment and applies them as one batch, so one fsync of the vote log
// serves the whole batch (group commit).
func (s *Store) run() {
	defer close(s.done)
	batch := make([]*request, 0, s.max)
	for {
		select {
		case <-s.quit:
			return
		case d := <-s.stepDone:
			s.finishStep(d)
			continue
		case rs := <-s.reqs:
			batch = append(batch[:0], rs...)
		}
		if s.holdBatch != nil {
			s.holdBatch()
		}
	fill:
		for len(batch) < s.max {
			select {
			case rs := <-s.reqs:
				batch = append(batch, rs...)
			default:
				break fill
			}
		}
		s.applyBatch(batch)
	}
}

func (s *Store) applyBatch(batch []*request) {
	err := s.failedErr()
	if err == nil {
		err = s.commitBatch(batch)
		if err != nil {
			s.fail(err)
		}
	}
	if err == nil && s.stepEveryBatch {
		// Tests: the step before the answers, so that they see it done.
		s.stepIfDue()
		if s.stepping != nil {
			s.finishStep(<-s.stepDone)
		}
	}
	for _, r := range batch {
		if err != nil {
			r.err = err
		}
		close(r.done)
	}
	if !s.stepEveryBatch {
		s.stepIfDue() // after the answers: no request waits for it
	}
}

// fail stops the store: a failed commit leaves memory and disk out of
// step, and a retried fsync may report success for lost data, so the
// process should restart and reload from disk.
func (s *Store) fail(err error) {
	if !s.stopping.CompareAndSwap(false, true) {
		return // OnFail is called once
	}
	s.log.Error("participant: write failed, store stopped", "db", s.path, "err", err)
	s.failed.Store(&err)
	if s.onFail != nil {
		s.onFail(err)
	}
}

// failedErr says why the store stopped, or nil. It takes no lock, so
// readers never wait behind the writer's fsync.
func (s *Store) failedErr() error {
	if err := s.failed.Load(); err != nil {
		return fmt.Errorf("participant: store %s stopped after a write error: %w", s.path, *err)
	}
	return nil
}

func (s *Store) commitBatch(batch []*request) (err error) {
	start := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() {
		// Memory may now name prepares that are not on disk: mark the
		// store failed before anyone (PreparedTxs, above all: recovery
		// counts its answers as votes) can look at it.
		if err != nil {
			s.failed.Store(&err)
		}
	}()
	term := s.term.Load()
	changesKV, locked, applied := false, false, false
	took, err := s.w.inTx(func(tx *wtx) error {
		for _, r := range batch {
			ok, err := s.fenceWrite(tx, r, &term)
			switch {
			case err != nil || !ok || r.termOnly:
			case r.install != nil:
				if r.err = s.refuseInstall(r.install); r.err == nil {
					changesKV = true
					err = s.install(tx, r.install)
				}
			case r.kind == protocol.MsgPrepare:
				err = s.prepare(tx, r)
			case r.kind == protocol.MsgCommit:
				err = s.commit(r)
			case r.kind == protocol.MsgAbort:
				err = s.abort(r)
			}
			if err != nil {
				return err
			}
		}
		applied, err = s.applyDueLocked(tx)
		changesKV = changesKV || applied
		if err != nil {
			return err
		}
		return s.makeDurable(tx)
	}, func() {
		// Readers must not see kv change under a view of before.
		if changesKV {
			s.view.mu.Lock()
			locked = true
		}
		if s.atCommit != nil {
			s.atCommit(changesKV)
		}
	})
	if !locked {
		s.view.mu.Lock()
	}
	if err == nil {
		s.publishLocked()
	}
	s.view.mu.Unlock()
	if err != nil {
		return err
	}
	s.term.Store(term) // durable now
	if s.votes.old != "" {
		if err := s.votes.retire(); err != nil {
			s.log.Warn("participant: could not remove a replaced vote log", "db", s.path, "err", err)
		}
	}
	if s.observe != nil {
		s.observe(took + s.voteSync)
	}
	if s.observeB != nil {
		s.observeB(time.Since(start), applied)
	}
	s.stats.batches.Add(1)
	return nil
}

// prepare, commit and abort run on the writer goroutine with s.mu held,
// in the batch, which sees the effects of the requests before them in
// it; each adds its record to the batch's vote log lines.

func (s *Store) prepare(tx *wtx, r *request) error {
	s.stats.prepares.Add(1)
	if s.tombs.has(r.txid) {
		r.vote = protocol.Vote{Reason: "transaction " + r.txid + " was already aborted"}
		return nil
	}
	if s.fence != "" && protocol.CompareTxIDs(r.txid, s.fence) < 0 {
		r.vote = protocol.Vote{Reason: "transaction " + r.txid + " was sent before this participant caught up (it accepts " + s.fence + " and later)"}
		return nil
	}
	if s.committed[r.txid] {
		// Its rows are still here, under the same id.
		r.vote = protocol.Vote{Reason: "transaction " + r.txid + " was already committed here"}
		return nil
	}
	if p, ok := s.prepared[r.txid]; ok {
		// A repeated prepare: the same answer, if it is still known.
		if p.vote != nil {
			r.vote = *p.vote
		} else {
			r.vote = protocol.Vote{Reason: "transaction " + r.txid + " was prepared before a restart; its vote is not repeated"}
		}
		return nil
	}
	for _, k := range r.txn.Keys() {
		if holder, ok := s.locks[k]; ok {
			r.vote = protocol.Vote{Conflict: true, Reason: fmt.Sprintf("key %.64q is locked by prepared transaction %s", k, holder)}
			return nil
		}
	}
	var readErr error
	out := protocol.Evaluate(r.txn, func(key string) protocol.Entry {
		if w, ok := s.over[key]; ok {
			return entry(w)
		}
		e, err := tx.readKV(key)
		if err != nil && readErr == nil {
			readErr = err
		}
		return e
	}, s.maxResult)
	if readErr != nil {
		return readErr
	}
	if out.TooLarge {
		r.vote = protocol.Vote{TooLarge: true, Reason: fmt.Sprintf("the values it reads pass the limit of %d bytes", s.maxResult)}
		return nil
	}
	r.vote = protocol.Vote{Kind: protocol.VoteYes, Succeeded: out.Succeeded, Results: out.Results}
	if len(out.Writes) == 0 {
		r.vote.Kind = protocol.VoteReadOnly
		return nil
	}
	s.votes.appendPrepare(r.txid, out.Writes)
	for _, w := range out.Writes {
		s.locks[w.Key] = r.txid
		s.touch(w.Key)
	}
	vote := r.vote
	s.prepared[r.txid] = &preparedTx{writes: out.Writes, vote: &vote, since: s.now()}
	return nil
}

func (s *Store) commit(r *request) error {
	p, ok := s.prepared[r.txid]
	if !ok {
		if s.tombs.has(r.txid) {
			r.err = fmt.Errorf("participant: commit of transaction %s, which was aborted here", r.txid)
		}
		return nil
	}
	s.stats.commits.Add(1)
	s.votes.appendCommit(r.txid)
	s.committedLocked(r.txid, p)
	return nil
}

func (s *Store) abort(r *request) error {
	s.tombs.add(r.txid)
	p, ok := s.prepared[r.txid]
	if !ok {
		return nil
	}
	s.stats.aborts.Add(1)
	s.votes.appendAbort(r.txid)
	s.unlockLocked(r.txid, p)
	return nil
}

func (s *Store) unlockLocked(txid string, p *preparedTx) {
	delete(s.prepared, txid)
	for _, w := range p.writes {
		delete(s.locks, w.Key)
		s.touch(w.Key)
	}
}

// tombstones remembers the most recent aborted transaction ids, oldest
// forgotten first. Memory is enough: a late prepare is a request from
// before the abort, and it cannot outlive a restart of this process.
type tombstones struct {
	set  map[string]struct{}
	ring []string
	next int
}

func newTombstones(n int) *tombstones {
	return &tombstones{set: make(map[string]struct{}, n), ring: make([]string, n)}
}

func (t *tombstones) has(id string) bool { _, ok := t.set[id]; return ok }

func (t *tombstones) add(id string) {
	if t.has(id) {
		return
	}
	delete(t.set, t.ring[t.next])
	t.ring[t.next] = id
	t.set[id] = struct{}{}
	t.next = (t.next + 1) % len(t.ring)
}
