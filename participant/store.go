package participant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver

	"github.com/twopc/twopc/protocol"
	"github.com/twopc/twopc/txlog"
)

// DefaultMaxResultBytes is the largest a transaction's results may be:
// the value of one get at the largest value the coordinator accepts.
const DefaultMaxResultBytes = 1 << 20

// ErrClosed is returned by calls on a closed Store.
var ErrClosed = errors.New("participant: store closed")

// The schema. kv is the committed data, with each key's version; meta
// holds the fence, the highest term seen and which vote log is current.
// prepared_writes and committed are where twopc kept its votes before
// the vote log (votelog.go): per prepared transaction, the entry each
// key it writes will have once it commits (found 0: the key is
// deleted), and the transactions committed but not yet applied to kv.
// Open reads what a database of an older twopc left in them into the
// vote log, and empties them.
const schema = `
CREATE TABLE IF NOT EXISTS kv (
	key     TEXT PRIMARY KEY,
	value   BLOB,
	binary  INTEGER NOT NULL,
	version INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS prepared_writes (
	txid    TEXT NOT NULL,
	key     TEXT NOT NULL,
	found   INTEGER NOT NULL,
	value   BLOB,
	binary  INTEGER NOT NULL,
	version INTEGER NOT NULL,
	PRIMARY KEY (txid, key)
) WITHOUT ROWID;
DROP INDEX IF EXISTS prepared_writes_key;
CREATE TABLE IF NOT EXISTS committed (
	seq   INTEGER PRIMARY KEY,
	txid  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;
`

// Options tune a Store; the zero value is usable.
type Options struct {
	// MaxBatch caps how many requests share one batch (one fsync).
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
	// ObserveCommit, if set, is told how long each batch took to become
	// durable: its vote log's fsync, and its SQLite commit (a WAL fsync)
	// if it changed kv or meta (metrics). It runs on the writer
	// goroutine: it must be quick.
	ObserveCommit func(time.Duration)
	// ObserveBatch, if set, is told how long each batch took on the
	// writer goroutine, from its start to durable, and whether it
	// carried apply work (all committed writes copied into kv at once:
	// apply.go): what every prepare in it waited. It runs on the writer
	// goroutine: it must be quick.
	ObserveBatch func(d time.Duration, applied bool)
	// ObserveApplyStep, if set, is told how long each step of an apply
	// cycle took to copy its writes into kv and commit, beside the
	// writer (applier.go). It runs on the writer goroutine (or in
	// Close): it must be quick.
	ObserveApplyStep func(time.Duration)
	// MaxResultBytes bounds the bytes of values one transaction's gets
	// may return here; past it the vote is NO (too large), so that one
	// small request cannot make the store hold many large values (0:
	// DefaultMaxResultBytes).
	MaxResultBytes int
	// KVCacheBytes bounds the memory of the cache of kv entries that
	// prepares read (kvcache.go); 0: DefaultKVCacheBytes, negative: off.
	KVCacheBytes int
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	// holdBatch, set only by tests, runs on the writer after it took the
	// first request of a batch and before it gathers the rest.
	holdBatch func()
	// applyEvery, set only by tests, replaces defaultApplyEvery (apply.go);
	// negative: apply at every batch.
	applyEvery time.Duration
	// stepEveryBatch, set only by tests, takes a step of an apply cycle
	// at every batch, before its answers (apply.go).
	stepEveryBatch bool
	// holdStep, set only by tests, runs where a step of an apply cycle
	// begins, beside the writer (applier.go); awaitingStep, where the
	// writer begins to wait for one.
	holdStep, awaitingStep func()
	// atCommit, set only by tests, runs on the writer just before a
	// batch's SQLite commit (its vote log is durable by then).
	atCommit func(changesKV bool)
	// voteLogBytes, set only by tests, replaces rotateVoteLogBytes
	// (votelog.go).
	voteLogBytes int64
}

// Store is a participant's SQLite database plus the in-memory lock table
// derived from its prepared rows.
type Store struct {
	path      string
	wdb       *sql.DB // the writer's connection and the applier's
	rdb       *sql.DB // concurrent readers
	w         *writer // wdb's connection, the writer goroutine's
	applier   *writer // wdb's other connection, the apply steps' (applier.go)
	now       func() time.Time
	max       int
	log       *slog.Logger
	maxResult int // Options.MaxResultBytes

	reqs chan []*request // each element is applied in one batch
	quit chan struct{}   // closed by Close
	done chan struct{}   // closed when the writer has exited

	// Written only by the writer goroutine; mu lets others read them.
	mu       sync.Mutex
	locks    map[string]string      // key -> id of the transaction holding it
	prepared map[string]*preparedTx // txid -> its writes
	tombs    *tombstones
	fence    string // prepares of ids before it are refused (see Install)

	// Lazy apply (apply.go), the writer's: committed writes not yet in
	// kv (key -> the latest) and their bytes; the last commit's number;
	// the cycle under way; the keys this batch changed, and whether
	// readers' view must be rebuilt whole.
	over           map[string]protocol.Write
	overBytes      int
	seq            int64           // the last commit's number
	committed      map[string]bool // transactions committed, not yet wholly in kv,
	committedOrder []seqID         // oldest first
	waitingSince   time.Time       // the first commit not in the cycle under way
	cycle          *applyCycle
	stepping       *step         // handed to the applier, not yet done
	stepDone       chan stepDone // the applier's answer
	applyEvery     time.Duration
	stepEveryBatch bool
	touched        []string
	rebuild        bool
	view           *view // what readers see (apply.go)

	lock        *os.File      // held while open (Open)
	votes       *voteLog      // the writer's (votelog.go)
	rotateVotes bool          // the batch changed kv under the vote log: rotate it
	voteSync    time.Duration // how long the batch's vote log took to be durable

	term atomic.Uint64 // the highest term seen, durably (term.go)

	closeOnce   sync.Once
	stats       counters
	failed      atomic.Pointer[error]     // set once a SQLite commit fails: the store stops
	stopping    atomic.Bool               // fail has run (OnFail once)
	onFail      func(error)               // Options.OnFail
	observe     func(time.Duration)       // Options.ObserveCommit
	observeB    func(time.Duration, bool) // Options.ObserveBatch
	holdBatch   func()                    // Options.holdBatch
	holdStep    func()                    // Options.holdStep
	awaiting    func()                    // Options.awaitingStep
	observeStep func(time.Duration)       // Options.ObserveApplyStep
	atCommit    func(bool)                // Options.atCommit
}

// preparedTx is a durable promise: a YES vote given, outcome not yet known.
type preparedTx struct {
	writes []protocol.Write // sorted by key
	vote   *protocol.Vote   // as given; nil for rows reloaded at start
	since  time.Time        // zero for rows reloaded at start: ask at once
}

type counters struct {
	batches, prepares, commits, aborts, applies atomic.Uint64
	fsyncs                                      atomic.Uint64 // the vote log's and SQLite's commits
	staleTerm                                   atomic.Uint64 // calls refused for a stale term
}

// Stats counts the work a Store has done since it was opened.
type Stats struct {
	// Batches is the number of the writer's batches, each at most one
	// fsync of the vote log and one SQLite commit (if it changed kv or
	// meta). Fsyncs counts those: the vote log's, two a rotation (the
	// new file's and its directory's), and one per SQLite commit
	// (synchronous=FULL syncs the WAL once per commit; checkpoints add a
	// few more that are not counted here).
	Batches, Fsyncs, Prepares, Commits, Aborts uint64
	// Applies counts the completed passes of committed writes into kv:
	// cycles, and whole applies (apply.go).
	Applies  uint64
	Prepared int
	// StaleTermRefusals counts the calls refused because their term was
	// lower than Term, the highest this participant has seen (term.go).
	StaleTermRefusals, Term uint64
	// KVCacheHits and KVQueries count a prepare's reads of kv: those the
	// cache answered, and those that queried SQLite (kvcache.go). Many
	// queries under a steady load say the cache is too small for the keys
	// in use (--kv-cache-bytes).
	KVCacheHits, KVQueries uint64
}

// Open opens (creating if needed) the database at path and reloads its
// prepared transactions, whose keys stay locked until they are resolved.
// A database written before versions and multi-key transactions is
// brought up to date first, in one SQLite transaction. One process at a
// time may have it open (a lock on path.lock): a second would replace
// the first one's vote log under it.
func Open(path string, opts Options) (*Store, error) {
	lock, err := txlog.LockFile(path)
	if errors.Is(err, txlog.ErrLocked) {
		return nil, fmt.Errorf("participant: %s is open in another process", path)
	}
	if err != nil {
		return nil, fmt.Errorf("participant: %w", err)
	}
	s, err := openStore(path, opts)
	if err != nil {
		lock.Close()
		return nil, err
	}
	s.lock = lock
	return s, nil
}

func openStore(path string, opts Options) (*Store, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.Tombstones <= 0 {
		opts.Tombstones = 100_000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.KVCacheBytes == 0 {
		opts.KVCacheBytes = DefaultKVCacheBytes
	}
	if opts.MaxResultBytes <= 0 {
		opts.MaxResultBytes = DefaultMaxResultBytes
	}
	wdb, err := openDB(path, 2, "immediate")
	if err != nil {
		return nil, err
	}
	if err := migrate(wdb); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("participant: schema of %s: %w", path, err)
	}
	rdb, err := openDB(path, 8, "deferred")
	if err != nil {
		wdb.Close()
		return nil, err
	}
	s := &Store{
		path: path, wdb: wdb, rdb: rdb, now: opts.Now, max: opts.MaxBatch, log: opts.Logger, maxResult: opts.MaxResultBytes,
		holdBatch: opts.holdBatch, atCommit: opts.atCommit, onFail: opts.OnFail, observe: opts.ObserveCommit, observeB: opts.ObserveBatch,
		holdStep: opts.holdStep, awaiting: opts.awaitingStep, observeStep: opts.ObserveApplyStep,
		stepDone:  make(chan stepDone, 1),
		reqs:      make(chan []*request, opts.MaxBatch),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
		locks:     map[string]string{},
		prepared:  map[string]*preparedTx{},
		tombs:     newTombstones(opts.Tombstones),
		over:      map[string]protocol.Write{},
		committed: map[string]bool{},
		view:      newView(),

		applyEvery: opts.applyEvery, stepEveryBatch: opts.stepEveryBatch,
	}
	if s.applyEvery == 0 {
		s.applyEvery = defaultApplyEvery
	}
	s.votes = &voteLog{db: path, rotateAt: opts.voteLogBytes}
	if s.votes.rotateAt <= 0 {
		s.votes.rotateAt = rotateVoteLogBytes
	}
	err = s.reload()
	if err == nil {
		s.w, err = openWriter(wdb, opts.KVCacheBytes)
	}
	if err == nil {
		if s.applier, err = openWriter(wdb, -1); err != nil {
			s.w.close()
		} else {
			s.w.beforeBegin = s.awaitStepLocked // the writer holds s.mu in its transactions
		}
	}
	if err != nil {
		s.votes.close()
		wdb.Close()
		rdb.Close()
		return nil, fmt.Errorf("participant: open %s: %w", path, err)
	}
	go s.run()
	return s, nil
}

// openDB opens one pool on path with the durability settings every
// connection must have: a vote may only be given on a synced WAL. The
// writer's transactions take the write lock at BEGIN (txlock
// "immediate"); readers' must not ("deferred"): go-sqlite3 ignores
// read-only transactions, and a reader's BEGIN IMMEDIATE held the
// writer up for the whole of its read.
func openDB(path string, conns int, txlock string) (*sql.DB, error) {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_busy_timeout", "10000")
	q.Set("_txlock", txlock)
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

// migrate creates the schema, or brings one from before versions and
// multi-key transactions up to date: kv gains a version (1 for every key
// that exists), and the single-key prepared table becomes
// prepared_writes, each write with the version it will leave.
func migrate(db *sql.DB) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var oldKV, oldPrepared int
	if err := tx.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'kv'`).Scan(&oldKV); err != nil {
		return err
	}
	if oldKV == 1 {
		var hasVersion int
		if err := tx.QueryRow(`SELECT count(*) FROM pragma_table_info('kv') WHERE name = 'version'`).Scan(&hasVersion); err != nil {
			return err
		}
		if hasVersion == 0 {
			if _, err := tx.Exec(`ALTER TABLE kv ADD COLUMN version INTEGER NOT NULL DEFAULT 1`); err != nil {
				return err
			}
		}
	}
	if _, err := tx.Exec(schema); err != nil {
		return err
	}
	if err := tx.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'prepared' AND type = 'table'`).Scan(&oldPrepared); err != nil {
		return err
	}
	if oldPrepared == 1 {
		// op 0 was put, 1 delete; a put makes the key's next version.
		if _, err := tx.Exec(`INSERT INTO prepared_writes (txid, key, found, value, binary, version)
			SELECT txid, key, op = 0, CASE op WHEN 0 THEN value END, CASE op WHEN 0 THEN binary ELSE 0 END,
			       CASE op WHEN 0 THEN COALESCE((SELECT version FROM kv WHERE kv.key = prepared.key), 0) + 1 ELSE 0 END
			FROM prepared`); err != nil {
			return err
		}
		if _, err := tx.Exec(`DROP TABLE prepared`); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// reload rebuilds the lock table and the committed writes not yet in kv
// from what a database of an older twopc left in prepared_writes and
// committed, then from the vote log (openVotes), and
// reads the fence of the last catch-up and the highest term seen.
func (s *Store) reload() error {
	err := s.wdb.QueryRow(`SELECT value FROM meta WHERE name = 'fence'`).Scan(&s.fence)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("reload fence: %w", err)
	}
	if err := s.reloadTerm(); err != nil {
		return err
	}
	if err := s.reloadCommitted(); err != nil {
		return fmt.Errorf("reload committed: %w", err)
	}
	// Committed and not yet dropped: their writes, in commit order, are
	// the keys' entries until they are applied.
	err = s.eachWrite(`SELECT c.txid, p.key, p.found, p.value, p.binary, p.version
		FROM committed c JOIN prepared_writes p ON p.txid = c.txid ORDER BY c.seq, p.key`,
		func(_ string, w protocol.Write) { s.setOver(w) })
	if err != nil {
		return fmt.Errorf("reload committed: %w", err)
	}
	err = s.eachWrite(`SELECT txid, key, found, value, binary, version FROM prepared_writes ORDER BY txid, key`,
		func(txid string, w protocol.Write) {
			if s.committed[txid] {
				return
			}
			p := s.prepared[txid]
			if p == nil {
				p = &preparedTx{}
				s.prepared[txid] = p
			}
			p.writes = append(p.writes, w)
			s.locks[w.Key] = txid
		})
	if err != nil {
		return fmt.Errorf("reload prepared: %w", err)
	}
	if err := s.openVotes(); err != nil {
		return err
	}
	if len(s.over) > 0 {
		s.waitingSince = time.Now()
	}
	s.rebuild = true
	s.publishLocked()
	return nil
}

// reloadCommitted reads which transactions are committed and not yet
// dropped, in commit order.
func (s *Store) reloadCommitted() error {
	rows, err := s.wdb.Query(`SELECT seq, txid FROM committed ORDER BY seq`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var c seqID
		if err := rows.Scan(&c.seq, &c.txid); err != nil {
			return err
		}
		s.committed[c.txid] = true
		s.committedOrder = append(s.committedOrder, c)
		s.seq = c.seq
	}
	return rows.Err()
}

// eachWrite runs query, whose rows are a transaction id and a write, on
// the writer's pool and hands f each row.
func (s *Store) eachWrite(query string, f func(txid string, w protocol.Write)) error {
	rows, err := s.wdb.Query(query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			txid string
			w    protocol.Write
		)
		if err := rows.Scan(&txid, &w.Key, &w.Found, &w.Value.Data, &w.Value.Binary, &w.Version); err != nil {
			return err
		}
		f(txid, w)
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
		err = errors.Join(s.applyAtClose(), s.w.close(), s.applier.close(), s.votes.close(), s.wdb.Close(), s.rdb.Close(), s.lock.Close())
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
		Fsyncs:   s.stats.fsyncs.Load() + s.w.commits.Load() + s.applier.commits.Load(),
		Prepares: s.stats.prepares.Load(),
		Commits:  s.stats.commits.Load(),
		Aborts:   s.stats.aborts.Load(),
		Applies:  s.stats.applies.Load(),
		Prepared: n,

		StaleTermRefusals: s.stats.staleTerm.Load(),
		Term:              s.term.Load(),
		KVCacheHits:       s.w.cache.hits.Load(),
		KVQueries:         s.w.cache.queries.Load(),
	}
}

// PreparedTxs lists the transactions this participant holds prepared,
// durably: the writer updates the list and commits under one lock. After a
// failed write the list may name what is not on disk, so it is refused.
func (s *Store) PreparedTxs(ctx context.Context) ([]protocol.PreparedTx, error) {
	if err := s.fenceRead(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failedErr(); err != nil {
		return nil, err
	}
	out := make([]protocol.PreparedTx, 0, len(s.prepared))
	for id, p := range s.prepared {
		keys := make([]string, len(p.writes))
		for i, w := range p.writes {
			keys[i] = w.Key
		}
		out = append(out, protocol.PreparedTx{TxID: id, Keys: keys, Since: p.since})
	}
	slices.SortFunc(out, func(a, b protocol.PreparedTx) int { return cmpString(a.TxID, b.TxID) })
	return out, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Counters returns Stats by name, as the stats method serves them.
func (s *Store) Counters() map[string]int64 {
	st := s.Stats()
	return map[string]int64{"batches": int64(st.Batches), "fsyncs": int64(st.Fsyncs), "prepares": int64(st.Prepares),
		"commits": int64(st.Commits), "aborts": int64(st.Aborts), "prepared": int64(st.Prepared),
		"stale_term_refusals": int64(st.StaleTermRefusals), "term": int64(st.Term)}
}
