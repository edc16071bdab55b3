package participant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

// ErrClosed is returned by calls on a closed Store.
var ErrClosed = errors.New("participant: store closed")

const schema = `
CREATE TABLE IF NOT EXISTS kv (
	key    TEXT PRIMARY KEY,
	value  BLOB,
	binary INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS prepared (
	txid    TEXT PRIMARY KEY,
	key     TEXT NOT NULL,
	op      INTEGER NOT NULL,
	value   BLOB,
	binary  INTEGER NOT NULL,
	existed INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS prepared_key ON prepared(key);
`

// Options tune a Store; the zero value is usable.
type Options struct {
	// MaxBatch caps how many requests share one SQLite transaction.
	MaxBatch int
	// Tombstones is how many aborted transaction ids are remembered to
	// refuse a prepare that arrives after its abort.
	Tombstones int
	// Now is the clock used to age prepared transactions; nil = time.Now.
	Now func() time.Time
	// OnFail is called once if a write to the database fails; the store
	// refuses everything from then on. The process should exit, so that a
	// restart reloads the state from disk (nil: just stop).
	OnFail func(error)
	// ObserveCommit, if set, is told how long each SQLite write
	// transaction's commit (its WAL fsync) took (metrics). It runs on the
	// writer goroutine: it must be quick.
	ObserveCommit func(time.Duration)

	// holdBatch, set only by tests, runs on the writer after it took the
	// first request of a batch and before it gathers the rest.
	holdBatch func()
}

// Store is a participant's SQLite database plus the in-memory lock table
// derived from its prepared rows.
type Store struct {
	path string
	wdb  *sql.DB // the writer goroutine's single connection
	rdb  *sql.DB // concurrent readers
	stmt writeStmts
	now  func() time.Time
	max  int

	reqs chan []*request // each element is applied in one batch
	quit chan struct{}   // closed by Close
	done chan struct{}   // closed when the writer has exited

	// Written only by the writer goroutine; mu lets others read them.
	mu       sync.Mutex
	locks    map[string]string      // key -> id of the transaction holding it
	prepared map[string]*preparedTx // txid -> its write
	tombs    *tombstones

	closeOnce sync.Once
	stats     counters
	failed    atomic.Pointer[error] // set once a SQLite commit fails: the store stops
	onFail    func(error)           // Options.OnFail
	observe   func(time.Duration)   // Options.ObserveCommit
	holdBatch func()                // Options.holdBatch
}

// preparedTx is a durable promise: a YES vote given, outcome not yet known.
type preparedTx struct {
	write   Write
	existed bool
	since   time.Time // zero for rows reloaded at start: ask at once
}

type counters struct {
	batches, prepares, commits, aborts atomic.Uint64
}

// Stats counts the work a Store has done since it was opened.
type Stats struct {
	// Batches is the number of SQLite write transactions, i.e. WAL fsyncs
	// (synchronous=FULL syncs the WAL once per commit; checkpoints add a
	// few more that are not counted here).
	Batches, Prepares, Commits, Aborts uint64
	Prepared                           int
}

// Open opens (creating if needed) the database at path and reloads its
// prepared transactions, whose keys stay locked until they are resolved.
func Open(path string, opts Options) (*Store, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.Tombstones <= 0 {
		opts.Tombstones = 100_000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	wdb, err := openDB(path, 1)
	if err != nil {
		return nil, err
	}
	if _, err := wdb.Exec(schema); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("participant: create schema in %s: %w", path, err)
	}
	rdb, err := openDB(path, 8)
	if err != nil {
		wdb.Close()
		return nil, err
	}
	s := &Store{
		path: path, wdb: wdb, rdb: rdb, now: opts.Now, max: opts.MaxBatch, holdBatch: opts.holdBatch, onFail: opts.OnFail, observe: opts.ObserveCommit,
		reqs:     make(chan []*request, opts.MaxBatch),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		locks:    map[string]string{},
		prepared: map[string]*preparedTx{},
		tombs:    newTombstones(opts.Tombstones),
	}
	err = s.stmt.prepare(wdb)
	if err == nil {
		err = s.reload()
	}
	if err != nil {
		wdb.Close()
		rdb.Close()
		return nil, fmt.Errorf("participant: open %s: %w", path, err)
	}
	go s.run()
	return s, nil
}

// openDB opens one pool on path with the durability settings every
// connection must have: a vote may only be given on a synced WAL.
func openDB(path string, conns int) (*sql.DB, error) {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_busy_timeout", "10000")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("participant: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(0)
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		db.Close()
		return nil, fmt.Errorf("participant: open %s: %w", path, err)
	}
	if mode != "wal" {
		db.Close()
		return nil, fmt.Errorf("participant: open %s: journal_mode is %q, want wal", path, mode)
	}
	return db, nil
}

// reload rebuilds the lock table from the prepared rows on disk.
func (s *Store) reload() error {
	rows, err := s.wdb.Query(`SELECT txid, key, op, value, binary, existed FROM prepared`)
	if err != nil {
		return fmt.Errorf("reload prepared: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			txid, key       string
			op              Op
			value           []byte
			binary, existed bool
		)
		if err := rows.Scan(&txid, &key, &op, &value, &binary, &existed); err != nil {
			return fmt.Errorf("reload prepared: %w", err)
		}
		s.locks[key] = txid
		s.prepared[txid] = &preparedTx{
			write:   Write{Key: key, Op: op, Value: Value{Data: value, Binary: binary}},
			existed: existed,
		}
	}
	return rows.Err()
}

// Close stops the writer and closes the database. Requests still queued
// fail with ErrClosed; what was committed stays committed.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.done
		err = errors.Join(s.wdb.Close(), s.rdb.Close())
	})
	return err
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	n := len(s.prepared)
	s.mu.Unlock()
	return Stats{
		Batches:  s.stats.batches.Load(),
		Prepares: s.stats.prepares.Load(),
		Commits:  s.stats.commits.Load(),
		Aborts:   s.stats.aborts.Load(),
		Prepared: n,
	}
}

// PreparedTx describes a transaction the participant holds prepared.
type PreparedTx struct {
	TxID  string
	Key   string
	Since time.Time // zero when reloaded at start
}

// PreparedTxs lists the transactions this participant holds prepared,
// durably: the writer updates the list and commits under one lock. After a
// failed write the list may name what is not on disk, so it is refused.
func (s *Store) PreparedTxs(context.Context) ([]PreparedTx, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failedErr(); err != nil {
		return nil, err
	}
	out := make([]PreparedTx, 0, len(s.prepared))
	for id, p := range s.prepared {
		out = append(out, PreparedTx{TxID: id, Key: p.write.Key, Since: p.since})
	}
	return out, nil
}
