package participant

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
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

func put(key, value string) Write {
	return Write{Key: key, Op: OpPut, Value: Value{Data: []byte(value)}}
}

func mustVote(t *testing.T, s *Store, txid string, w Write, yes bool) Vote {
	t.Helper()
	v, err := s.Prepare(ctx, txid, w)
	if err != nil {
		t.Fatal(err)
	}
	if v.Yes != yes {
		t.Fatalf("prepare %s on %q: vote %+v, want yes=%v", txid, w.Key, v, yes)
	}
	return v
}

func mustRead(t *testing.T, s *Store, key string) ReadResult {
	t.Helper()
	r, err := s.Read(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDurabilitySettings(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "p.db"))
	var sync int
	var mode string
	if err := s.wdb.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if err := s.wdb.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if sync != 2 || mode != "wal" {
		t.Fatalf("writer connection: synchronous=%d journal_mode=%s, want 2 (FULL) and wal", sync, mode)
	}
}

func TestPrepareCommitAbort(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "p.db"))
	v := mustVote(t, s, "1.1", put("k", "v1"), true)
	if v.Existed {
		t.Fatal("new key reported as existing")
	}
	// The key is locked: a second transaction gets a conflict NO.
	v = mustVote(t, s, "1.2", put("k", "other"), false)
	if !v.Conflict {
		t.Fatalf("vote %+v, want a conflict", v)
	}
	// Until commit, readers see the old state plus the pending write.
	r := mustRead(t, s, "k")
	if r.Found || r.Pending != "1.1" || string(r.Write.Value.Data) != "v1" {
		t.Fatalf("read during prepare: %+v", r)
	}
	for range 2 { // idempotent
		if err := s.Commit(ctx, "1.1"); err != nil {
			t.Fatal(err)
		}
	}
	r = mustRead(t, s, "k")
	if !r.Found || string(r.Value.Data) != "v1" || r.Pending != "" {
		t.Fatalf("read after commit: %+v", r)
	}
	// Delete reports that the key existed; abort leaves the value alone.
	v = mustVote(t, s, "1.3", Write{Key: "k", Op: OpDelete}, true)
	if !v.Existed {
		t.Fatal("existing key reported as missing")
	}
	for range 2 {
		if err := s.Abort(ctx, "1.3"); err != nil {
			t.Fatal(err)
		}
	}
	if r = mustRead(t, s, "k"); !r.Found || r.Pending != "" {
		t.Fatalf("read after abort: %+v", r)
	}
	// A prepare that arrives after its abort is refused.
	if v = mustVote(t, s, "1.3", Write{Key: "k", Op: OpDelete}, false); v.Conflict {
		t.Fatalf("late prepare: %+v, want a refusal, not a conflict", v)
	}
	// So is a commit of an aborted transaction: that would be a protocol bug.
	if err := s.Commit(ctx, "1.3"); err == nil {
		t.Fatal("commit of an aborted transaction succeeded")
	}
	// Delete commits remove the key.
	mustVote(t, s, "1.4", Write{Key: "k", Op: OpDelete}, true)
	if err := s.Commit(ctx, "1.4"); err != nil {
		t.Fatal(err)
	}
	if r = mustRead(t, s, "k"); r.Found {
		t.Fatalf("read after delete: %+v", r)
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
	mustVote(t, s, "1.1", Write{Key: "bin", Op: OpPut, Value: Value{Data: []byte{0, 1, 2}, Binary: true}}, true)
	s.Close()

	s = open(t, path)
	mustVote(t, s, "2.1", put("bin", "x"), false)
	pts, _ := s.PreparedTxs(ctx)
	if len(pts) != 1 || pts[0].TxID != "1.1" || !pts[0].Since.IsZero() {
		t.Fatalf("prepared after restart: %+v", pts)
	}
	if err := s.Commit(ctx, "1.1"); err != nil {
		t.Fatal(err)
	}
	r := mustRead(t, s, "bin")
	if !r.Found || !r.Value.Binary || string(r.Value.Data) != "\x00\x01\x02" {
		t.Fatalf("read: %+v", r)
	}
	mustVote(t, s, "2.1", put("bin", "x"), true)
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
		wg.Go(func() { mustVote(t, s, fmt.Sprintf("1.%d", i), put(fmt.Sprint("k", i), "v"), true) })
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
	apply := func(s *Store, id string, w Write) {
		mustVote(t, s, id, w, true)
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
	apply(b, "3", Write{Key: "x", Op: OpPut, Value: Value{Data: []byte("1"), Binary: true}})
	if db, _ = b.Digest(ctx); db.Hash == da.Hash {
		t.Fatal("digest ignores the value type")
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
	mustVote(t, c, "2", put("z", "1"), true)
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
	mustVote(t, s, "1.1", put("a", "committed"), true)
	mustVote(t, s, "1.2", put("b", "aborted"), true)
	s.Close()

	// Reloaded transactions are asked about at once.
	s, err = Open(path, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustVote(t, s, "2.1", put("c", "young"), true)
	mustVote(t, s, "2.2", put("d", "unknown"), true)
	now = now.Add(time.Second)
	f := &fakeResolver{outcomes: map[string]bool{"1.1": true, "1.2": false, "2.1": true}}
	n, err := s.Resolve(ctx, f, 10*time.Second)
	if err != nil || n != 2 {
		t.Fatalf("resolve: n=%d err=%v, want 2 nil", n, err)
	}
	if r := mustRead(t, s, "a"); !r.Found || r.Pending != "" {
		t.Fatalf("a: %+v", r)
	}
	if r := mustRead(t, s, "b"); r.Found || r.Pending != "" {
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
	mustVote(t, s, "1.1", put("k", "v"), true)
	s.wdb.Close() // the disk goes away under the writer
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
