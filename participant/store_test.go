package participant

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twopc/twopc/protocol"
)

var ctx = context.Background()

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func txn(ops ...protocol.Op) *protocol.Txn { return &protocol.Txn{Success: ops} }

func put(key, value string) *protocol.Txn {
	return txn(protocol.Op{Kind: protocol.OpPut, Key: key, Value: protocol.Value{Data: []byte(value)}})
}

func del(key string) *protocol.Txn { return txn(protocol.Op{Kind: protocol.OpDelete, Key: key}) }

func mustVote(t *testing.T, s *Store, txid string, tx *protocol.Txn, want protocol.VoteKind) protocol.Vote {
	t.Helper()
	v, err := s.Prepare(ctx, txid, tx)
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind != want {
		t.Fatalf("prepare %s on %q: vote %+v, want kind %d", txid, tx.Keys(), v, want)
	}
	return v
}

const (
	yes = protocol.VoteYes
	no  = protocol.VoteNo
)

func mustRead(t *testing.T, s *Store, key string) protocol.KeyState {
	t.Helper()
	r, err := s.Read(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return r[0]
}

func TestDurabilitySettings(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "p.db"))
	var sync int
	var mode string
	if err := s.w.conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if err := s.w.conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if sync != 2 || mode != "wal" {
		t.Fatalf("writer connection: synchronous=%d journal_mode=%s, want 2 (FULL) and wal", sync, mode)
	}
}

func TestPrepareCommitAbort(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "p.db"))
	v := mustVote(t, s, "1.1", put("k", "v1"), yes)
	if v.Results[0].Version != 1 {
		t.Fatalf("new key: version %d, want 1", v.Results[0].Version)
	}
	// The key is locked: a second transaction gets a conflict NO.
	v = mustVote(t, s, "1.2", put("k", "other"), no)
	if !v.Conflict {
		t.Fatalf("vote %+v, want a conflict", v)
	}
	// Until commit, readers see the old state plus the pending write.
	r := mustRead(t, s, "k")
	if r.Entry.Found || r.Pending != "1.1" || string(r.Next.Value.Data) != "v1" || r.Next.Version != 1 {
		t.Fatalf("read during prepare: %+v", r)
	}
	for range 2 { // idempotent
		if err := s.Commit(ctx, "1.1"); err != nil {
			t.Fatal(err)
		}
	}
	r = mustRead(t, s, "k")
	if !r.Entry.Found || string(r.Entry.Value.Data) != "v1" || r.Entry.Version != 1 || r.Pending != "" {
		t.Fatalf("read after commit: %+v", r)
	}
	// Delete reports that the key existed; abort leaves the value alone.
	v = mustVote(t, s, "1.3", del("k"), yes)
	if !v.Results[0].Existed {
		t.Fatal("existing key reported as missing")
	}
	for range 2 {
		if err := s.Abort(ctx, "1.3"); err != nil {
			t.Fatal(err)
		}
	}
	if r = mustRead(t, s, "k"); !r.Entry.Found || r.Pending != "" {
		t.Fatalf("read after abort: %+v", r)
	}
	// A prepare that arrives after its abort is refused.
	if v = mustVote(t, s, "1.3", del("k"), no); v.Conflict {
		t.Fatalf("late prepare: %+v, want a refusal, not a conflict", v)
	}
	// So is a commit of an aborted transaction: that would be a protocol bug.
	if err := s.Commit(ctx, "1.3"); err == nil {
		t.Fatal("commit of an aborted transaction succeeded")
	}
	// Delete commits remove the key; a put after it starts at version 1.
	mustVote(t, s, "1.4", del("k"), yes)
	if err := s.Commit(ctx, "1.4"); err != nil {
		t.Fatal(err)
	}
	if r = mustRead(t, s, "k"); r.Entry.Found || r.Entry.Version != 0 {
		t.Fatalf("read after delete: %+v", r)
	}
	// Deleting a missing key writes nothing: a read-only vote, nothing held.
	mustVote(t, s, "1.5", del("k"), protocol.VoteReadOnly)
	if st := s.Stats(); st.Prepared != 0 {
		t.Fatalf("a read-only vote left %d prepared", st.Prepared)
	}
	st := s.Stats()
	if st.Prepared != 0 || st.Commits != 2 || st.Aborts != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A participant killed after voting YES keeps its promise: the prepared
// write and the key lock come back on restart, and the commit still works.
func TestPreparedSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	bin := txn(protocol.Op{Kind: protocol.OpPut, Key: "bin", Value: protocol.Value{Data: []byte{0, 1, 2}, Binary: true}},
		protocol.Op{Kind: protocol.OpPut, Key: "other", Value: protocol.Value{Data: []byte("o")}})
	mustVote(t, s, "1.1", bin, yes)
	s.Close()

	s = open(t, path)
	mustVote(t, s, "2.1", put("bin", "x"), no)
	mustVote(t, s, "2.2", put("other", "x"), no)
	// A repeated prepare after a restart is refused: the vote is not kept.
	mustVote(t, s, "1.1", bin, no)
	pts, _ := s.PreparedTxs(ctx)
	if len(pts) != 1 || pts[0].TxID != "1.1" || !pts[0].Since.IsZero() || !slices.Equal(pts[0].Keys, []string{"bin", "other"}) {
		t.Fatalf("prepared after restart: %+v", pts)
	}
	if err := s.Commit(ctx, "1.1"); err != nil {
		t.Fatal(err)
	}
	r := mustRead(t, s, "bin")
	if !r.Entry.Found || !r.Entry.Value.Binary || string(r.Entry.Value.Data) != "\x00\x01\x02" {
		t.Fatalf("read: %+v", r)
	}
	mustVote(t, s, "2.1", put("bin", "x"), yes)
}

// One fsync serves every request waiting when the writer comes round.
// The test holds the writer after it took the first prepare until the 63
// others are queued, so all 64 share one commit, exactly.
func TestGroupCommit(t *testing.T) {
	const n = 64
	release := make(chan struct{})
	var first sync.Once
	s, err := Open(filepath.Join(t.TempDir(), "p.db"), Options{holdBatch: func() { first.Do(func() { <-release }) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := s.Stats().Batches
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { mustVote(t, s, fmt.Sprintf("1.%d", i), put(fmt.Sprint("k", i), "v"), yes) })
	}
	for len(s.reqs) < n-1 {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if got := s.Stats().Batches - before; got != 1 {
		t.Fatalf("%d prepares took %d SQLite commits, want 1", n, got)
	}
}

func TestDigest(t *testing.T) {
	dir := t.TempDir()
	a, b := open(t, filepath.Join(dir, "a.db")), open(t, filepath.Join(dir, "b.db"))
	apply := func(s *Store, id string, tx *protocol.Txn) {
		mustVote(t, s, id, tx, yes)
		if err := s.Commit(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// Same data, written in different orders.
	apply(a, "1", put("x", "1"))
	apply(a, "2", put("y", "2"))
	apply(b, "2", put("y", "2"))
	apply(b, "1", put("x", "1"))
	da, _ := a.Digest(ctx)
	db, _ := b.Digest(ctx)
	if da != db || da.Keys != 2 {
		t.Fatalf("equal data, digests differ: %+v %+v", da, db)
	}
	// Same bytes but binary instead of string is a different value.
	apply(b, "3", txn(protocol.Op{Kind: protocol.OpPut, Key: "x", Value: protocol.Value{Data: []byte("1"), Binary: true}}))
	if db, _ = b.Digest(ctx); db.Hash == da.Hash {
		t.Fatal("digest ignores the value type")
	}
	// Same value, another version: a replica that missed a write differs.
	apply(a, "3", put("x", "1"))
	apply(b, "4", put("x", "1"))
	if da, _ = a.Digest(ctx); da.Hash == db.Hash {
		t.Fatal("digest ignores versions")
	}
	// Length prefixes: ("ab","c") and ("a","bc") must not collide.
	c, d := open(t, filepath.Join(dir, "c.db")), open(t, filepath.Join(dir, "d.db"))
	apply(c, "1", put("ab", "c"))
	apply(d, "1", put("a", "bc"))
	dc, _ := c.Digest(ctx)
	dd, _ := d.Digest(ctx)
	if dc.Hash == dd.Hash {
		t.Fatal("digest collision between different pairs")
	}
	mustVote(t, c, "2", put("z", "1"), yes)
	if dc, _ = c.Digest(ctx); dc.Prepared != 1 {
		t.Fatalf("digest prepared count %d, want 1", dc.Prepared)
	}
}

type fakeResolver struct {
	outcomes map[string]bool
	asked    []string
}

func (f *fakeResolver) Outcome(_ context.Context, txid string) (bool, error) {
	f.asked = append(f.asked, txid)
	c, ok := f.outcomes[txid]
	if !ok {
		return false, fmt.Errorf("coordinator unreachable")
	}
	return c, nil
}

func TestResolve(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	now := time.Unix(1000, 0)
	s, err := Open(path, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	mustVote(t, s, "1.1", put("a", "committed"), yes)
	mustVote(t, s, "1.2", put("b", "aborted"), yes)
	s.Close()

	// Reloaded transactions are asked about at once.
	s, err = Open(path, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustVote(t, s, "2.1", put("c", "young"), yes)
	mustVote(t, s, "2.2", put("d", "unknown"), yes)
	now = now.Add(time.Second)
	f := &fakeResolver{outcomes: map[string]bool{"1.1": true, "1.2": false, "2.1": true}}
	n, err := s.Resolve(ctx, f, 10*time.Second)
	if err != nil || n != 2 {
		t.Fatalf("resolve: n=%d err=%v, want 2 nil", n, err)
	}
	if r := mustRead(t, s, "a"); !r.Entry.Found || r.Pending != "" {
		t.Fatalf("a: %+v", r)
	}
	if r := mustRead(t, s, "b"); r.Entry.Found || r.Pending != "" {
		t.Fatalf("b: %+v", r)
	}
	// Young ones wait; once old enough they are asked, and a failure to get
	// an answer keeps the transaction prepared and locked.
	now = now.Add(time.Minute)
	n, err = s.Resolve(ctx, f, 10*time.Second)
	if err == nil || n != 1 {
		t.Fatalf("resolve: n=%d err=%v, want 1 and an error", n, err)
	}
	if r := mustRead(t, s, "d"); r.Pending != "2.2" {
		t.Fatalf("d: %+v", r)
	}
	if st := s.Stats(); st.Prepared != 1 {
		t.Fatalf("prepared %d, want 1", st.Prepared)
	}
}

func TestClosedStore(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "p.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Prepare(ctx, "1", put("k", "v")); err != ErrClosed {
		t.Fatalf("prepare on closed store: %v", err)
	}
}

// A failed database write stops the store for good and says so once: the
// process exits on it, and a restart reloads the state from disk.
func TestWriteFailureStopsStore(t *testing.T) {
	calls := make(chan error, 4)
	s, err := Open(filepath.Join(t.TempDir(), "p.db"), Options{OnFail: func(err error) { calls <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustVote(t, s, "1.1", put("k", "v"), yes)
	s.w.conn.Close() // the disk goes away under the writer
	if _, err := s.Prepare(ctx, "1.2", put("j", "v")); err == nil {
		t.Fatal("prepare succeeded on a failed database")
	}
	if _, err := s.Prepare(ctx, "1.3", put("i", "v")); err == nil {
		t.Fatal("second prepare succeeded on a failed database")
	}
	if _, err := s.Read(ctx, "k"); err == nil {
		t.Fatal("read served by a stopped store")
	}
	// Its memory may name a prepare that never reached the disk: the
	// coordinator's recovery must not count it as a vote.
	if pts, err := s.PreparedTxs(ctx); err == nil {
		t.Fatalf("prepared list served by a stopped store: %v", pts)
	}
	if n := len(calls); n != 1 {
		t.Fatalf("OnFail called %d times, want once", n)
	}
}

// A transaction runs on the replica's data: compares pick the branch,
// versions count writes, and a get sees the puts before it.
func TestTransactionAtReplica(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "p.db"))
	commit := func(id string, tx *protocol.Txn) protocol.Vote {
		t.Helper()
		v := mustVote(t, s, id, tx, yes)
		if err := s.Commit(ctx, id); err != nil {
			t.Fatal(err)
		}
		return v
	}
	commit("1.1", put("a", "1"))
	commit("1.2", put("a", "2"))
	val := func(s string) protocol.Value { return protocol.Value{Data: []byte(s)} }
	cas := &protocol.Txn{
		Compares: []protocol.Compare{{Key: "a", Target: protocol.TargetVersion, Op: protocol.Equal, Version: 2}},
		Success: []protocol.Op{{Kind: protocol.OpPut, Key: "a", Value: val("3")}, {Kind: protocol.OpPut, Key: "b", Value: val("x")},
			{Kind: protocol.OpGet, Key: "a"}},
		Failure: []protocol.Op{{Kind: protocol.OpGet, Key: "a"}},
	}
	v := commit("1.3", cas)
	want := []protocol.Result{{Kind: protocol.OpPut, Version: 3}, {Kind: protocol.OpPut, Version: 1},
		{Kind: protocol.OpGet, Found: true, Version: 3, Value: val("3")}}
	if !v.Succeeded || fmt.Sprint(v.Results) != fmt.Sprint(want) {
		t.Fatalf("cas: %+v, want success with %v", v, want)
	}
	// The same compare now fails: the failure branch only reads.
	v = mustVote(t, s, "1.4", cas, protocol.VoteReadOnly)
	if v.Succeeded || len(v.Results) != 1 || string(v.Results[0].Value.Data) != "3" {
		t.Fatalf("failed cas: %+v", v)
	}
	ks, err := s.Read(ctx, "a", "b", "c")
	if err != nil {
		t.Fatal(err)
	}
	if ks[0].Entry.Version != 3 || ks[1].Entry.Version != 1 || ks[2].Entry.Found {
		t.Fatalf("read: %+v", ks)
	}
	// A prepared transaction locks every key it touches, compares included:
	// one reading a key another holds gets a conflict.
	mustVote(t, s, "1.5", put("c", "1"), yes)
	reader := &protocol.Txn{Compares: []protocol.Compare{{Key: "c", Target: protocol.TargetExists, Op: protocol.Equal}},
		Success: []protocol.Op{{Kind: protocol.OpPut, Key: "d", Value: val("1")}}}
	if v := mustVote(t, s, "1.6", reader, no); !v.Conflict {
		t.Fatalf("vote on a locked compare key: %+v", v)
	}
}

// A database written before versions and multi-key transactions (the kv
// table without version, a prepared table of one key per transaction) is
// brought up to date at Open, its prepared transaction kept.
func TestMigrateOldDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	db, err := openDB(path, 1, "immediate")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB, binary INTEGER NOT NULL) WITHOUT ROWID`,
		`CREATE TABLE prepared (txid TEXT PRIMARY KEY, key TEXT NOT NULL, op INTEGER NOT NULL, value BLOB, binary INTEGER NOT NULL, existed INTEGER NOT NULL) WITHOUT ROWID`,
		`INSERT INTO kv VALUES ('a', 'old', 0), ('b', 'gone', 0)`,
		`INSERT INTO prepared VALUES ('3.1', 'a', 0, 'new', 0, 1), ('3.2', 'b', 1, NULL, 0, 1)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s := open(t, path)
	ks, err := s.Read(ctx, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	if a := ks[0]; a.Entry.Version != 1 || a.Pending != "3.1" || a.Next.Version != 2 || string(a.Next.Value.Data) != "new" {
		t.Fatalf("a after migration: %+v", a)
	}
	if b := ks[1]; b.Pending != "3.2" || b.Next.Found {
		t.Fatalf("b after migration: %+v", b)
	}
	for _, id := range []string{"3.1", "3.2"} {
		if err := s.Commit(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if ks, _ = s.Read(ctx, "a", "b"); ks[0].Entry.Version != 2 || ks[1].Entry.Found {
		t.Fatalf("after the commits: %+v", ks)
	}
}
