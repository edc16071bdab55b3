package participant

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"
)

// request is one change waiting for the writer goroutine.
type request struct {
	kind  requestKind
	txid  string
	write Write // prepare only

	vote Vote  // prepare's answer
	err  error // set by the writer
	done chan struct{}
}

type requestKind int

const (
	reqPrepare requestKind = iota
	reqCommit
	reqAbort
)

// Prepare locks w.Key for txid and durably records w, then votes YES; or
// votes NO if the key is held by another transaction or txid was aborted.
func (s *Store) Prepare(ctx context.Context, txid string, w Write) (Vote, error) {
	r := &request{kind: reqPrepare, txid: txid, write: w}
	if err := s.submit(ctx, r); err != nil {
		return Vote{}, err
	}
	return r.vote, nil
}

// Commit applies txid's prepared write and unlocks its key. Committing a
// transaction that is not prepared here is a no-op: it was committed
// before (commit is idempotent).
func (s *Store) Commit(ctx context.Context, txid string) error {
	return s.submit(ctx, &request{kind: reqCommit, txid: txid})
}

// Abort discards txid's prepared write, if any, unlocks its key and
// remembers txid so that a late prepare for it is refused.
func (s *Store) Abort(ctx context.Context, txid string) error {
	return s.submit(ctx, &request{kind: reqAbort, txid: txid})
}

// submit hands rs to the writer as one unit, so that they share one
// SQLite transaction, and waits for their durable results. Once the writer
// has taken them, the wait does not honour ctx: the outcome is decided in
// at most one SQLite commit, and abandoning it would hide a YES vote.
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
	if len(rs) == 1 {
		return rs[0].err
	}
	return nil
}

// run is the writer goroutine: it takes every request waiting at that
// moment and applies them in one SQLite transaction, so one fsync serves
// the whole batch (group commit).
func (s *Store) run() {
	defer close(s.done)
	batch := make([]*request, 0, s.max)
	for {
		select {
		case <-s.quit:
			return
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
			// A failed commit leaves memory and disk out of step, and a
			// retried fsync may report success for lost data: stop, and
			// let the process restart and reload from disk.
			slog.Error("participant: write failed, store stopped", "db", s.path, "err", err)
			s.failed.Store(&err)
			if s.onFail != nil {
				s.onFail(err)
			}
		}
	}
	for _, r := range batch {
		if err != nil {
			r.err = err
		}
		close(r.done)
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
	tx, err := s.wdb.Begin()
	if err != nil {
		return err
	}
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
	for _, r := range batch {
		switch r.kind {
		case reqPrepare:
			err = s.prepare(tx, r)
		case reqCommit:
			err = s.commit(tx, r)
		case reqAbort:
			err = s.abort(tx, r)
		}
		if err != nil {
			tx.Rollback()
			return err
		}
	}
	start := time.Now()
	if err := tx.Commit(); err != nil {
		return err
	}
	if s.observe != nil {
		s.observe(time.Since(start))
	}
	s.stats.batches.Add(1)
	return nil
}

// prepare, commit and abort run on the writer goroutine with s.mu held,
// inside the batch's SQLite transaction.

func (s *Store) prepare(tx *sql.Tx, r *request) error {
	s.stats.prepares.Add(1)
	w := r.write
	if s.tombs.has(r.txid) {
		r.vote = Vote{Reason: "transaction " + r.txid + " was already aborted"}
		return nil
	}
	if p, ok := s.prepared[r.txid]; ok {
		if p.write.Key != w.Key {
			r.vote = Vote{Reason: "transaction " + r.txid + " is prepared for another key"}
			return nil
		}
		r.vote = Vote{Yes: true, Existed: p.existed}
		return nil
	}
	if holder, ok := s.locks[w.Key]; ok {
		r.vote = Vote{Conflict: true, Reason: "key is locked by prepared transaction " + holder}
		return nil
	}
	var one int
	err := tx.Stmt(s.stmt.exists).QueryRow(w.Key).Scan(&one)
	existed := err == nil
	if err != nil && err != sql.ErrNoRows {
		return err
	}
	_, err = tx.Stmt(s.stmt.insertPrepared).Exec(r.txid, w.Key, w.Op, w.Value.Data, w.Value.Binary, existed)
	if err != nil {
		return err
	}
	s.locks[w.Key] = r.txid
	s.prepared[r.txid] = &preparedTx{write: w, existed: existed, since: s.now()}
	r.vote = Vote{Yes: true, Existed: existed}
	return nil
}

func (s *Store) commit(tx *sql.Tx, r *request) error {
	p, ok := s.prepared[r.txid]
	if !ok {
		if s.tombs.has(r.txid) {
			r.err = fmt.Errorf("participant: commit of transaction %s, which was aborted here", r.txid)
		}
		return nil
	}
	s.stats.commits.Add(1)
	var err error
	if p.write.Op == OpDelete {
		_, err = tx.Stmt(s.stmt.deleteKV).Exec(p.write.Key)
	} else {
		_, err = tx.Stmt(s.stmt.upsertKV).Exec(p.write.Key, p.write.Value.Data, p.write.Value.Binary)
	}
	if err != nil {
		return err
	}
	return s.forget(tx, r.txid, p)
}

func (s *Store) abort(tx *sql.Tx, r *request) error {
	s.tombs.add(r.txid)
	p, ok := s.prepared[r.txid]
	if !ok {
		return nil
	}
	s.stats.aborts.Add(1)
	return s.forget(tx, r.txid, p)
}

func (s *Store) forget(tx *sql.Tx, txid string, p *preparedTx) error {
	if _, err := tx.Stmt(s.stmt.deletePrepared).Exec(txid); err != nil {
		return err
	}
	delete(s.prepared, txid)
	delete(s.locks, p.write.Key)
	return nil
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

// writeStmts are the writer's statements, prepared once: preparing SQL
// for every write cost as much as executing it.
type writeStmts struct {
	exists, insertPrepared, upsertKV, deleteKV, deletePrepared *sql.Stmt
}

func (w *writeStmts) prepare(db *sql.DB) error {
	for _, s := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&w.exists, `SELECT 1 FROM kv WHERE key = ?`},
		{&w.insertPrepared, `INSERT INTO prepared (txid, key, op, value, binary, existed) VALUES (?, ?, ?, ?, ?, ?)`},
		{&w.upsertKV, `INSERT INTO kv (key, value, binary) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, binary = excluded.binary`},
		{&w.deleteKV, `DELETE FROM kv WHERE key = ?`},
		{&w.deletePrepared, `DELETE FROM prepared WHERE txid = ?`},
	} {
		st, err := db.Prepare(s.sql)
		if err != nil {
			return err
		}
		*s.dst = st
	}
	return nil
}
