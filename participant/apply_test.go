package participant

import (
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twopc/twopc/protocol"
)

func openWith(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// lazy never applies on its own within a test: only Close, an install or
// maxUnapplied writes do.
var lazy = Options{applyEvery: time.Hour}

func commit(t *testing.T, s *Store, txid string, tx *protocol.Txn) {
	t.Helper()
	mustVote(t, s, txid, tx, yes)
	if err := s.Commit(ctx, txid); err != nil {
		t.Fatal(err)
	}
}

// rawKV reads kv straight from the file, as a reader of the table would.
func rawKV(t *testing.T, path string) map[string]string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT key, value FROM kv`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

// copyDB copies a database and its WAL as a crash would leave them: the
// store is idle, so every commit is in the copy.
func copyDB(t *testing.T, from, to string) {
	t.Helper()
	logs, err := filepath.Glob(from + "-votes.*")
	if err != nil || len(logs) == 0 {
		t.Fatalf("no vote log next to %s (%v)", from, err)
	}
	suffixes := []string{"", "-wal"}
	for _, l := range logs {
		suffixes = append(suffixes, strings.TrimPrefix(l, from))
	}
	for _, suffix := range suffixes {
		src, err := os.Open(from + suffix)
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.Create(to + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		src.Close()
		dst.Close()
	}
}

func TestCommittedWritesReachKVLazily(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.db")
	s := openWith(t, path, lazy)
	commit(t, s, "1.1", txn(
		protocol.Op{Kind: protocol.OpPut, Key: "a", Value: protocol.Value{Data: []byte("1")}},
		protocol.Op{Kind: protocol.OpPut, Key: "b", Value: protocol.Value{Data: []byte("2")}}))
	commit(t, s, "1.2", del("b"))
	mustVote(t, s, "1.3", put("c", "3"), yes) // stays prepared
	// The same id again: its rows are still here, so a NO, and the store
	// goes on.
	mustVote(t, s, "1.1", put("x", "again"), no)

	if got := mustRead(t, s, "a"); string(got.Entry.Value.Data) != "1" || got.Entry.Version != 1 {
		t.Fatalf("read a: %+v, want 1 at version 1", got)
	}
	if got := mustRead(t, s, "b"); got.Entry.Found {
		t.Fatalf("read b: %+v, want deleted", got)
	}
	if kv := rawKV(t, path); len(kv) != 0 {
		t.Fatalf("kv holds %v before any apply, want nothing yet (the writes wait in memory)", kv)
	}

	// A crash now: the copy must hold both commits and the prepare.
	crashed := filepath.Join(dir, "crashed.db")
	copyDB(t, path, crashed)
	c := openWith(t, crashed, lazy)
	if got := mustRead(t, c, "a"); string(got.Entry.Value.Data) != "1" || got.Pending != "" {
		t.Fatalf("after the crash, read a: %+v, want 1, committed", got)
	}
	if got := mustRead(t, c, "b"); got.Entry.Found {
		t.Fatalf("after the crash, read b: %+v, want deleted", got)
	}
	if got := mustRead(t, c, "c"); got.Pending != "1.3" || got.Entry.Found {
		t.Fatalf("after the crash, read c: %+v, want held by 1.3", got)
	}
	prepared, err := c.PreparedTxs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(prepared) != 1 || prepared[0].TxID != "1.3" {
		t.Fatalf("after the crash, prepared %+v, want only 1.3 (1.1 and 1.2 committed)", prepared)
	}
	if d1, d2 := digest(t, s), digest(t, c); d1 != d2 {
		t.Fatalf("digests differ after the crash: %+v and %+v", d1, d2)
	}
	mustVote(t, c, "2.1", put("a", "again"), yes) // a is free, and its version follows
	if got := mustRead(t, c, "a"); got.Next.Version != 2 {
		t.Fatalf("a prepared again: next %+v, want version 2", got.Next)
	}

	// A clean close applies: the file then holds the data in kv.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if kv := rawKV(t, path); !maps(kv, map[string]string{"a": "1"}) {
		t.Fatalf("kv after close: %v, want a=1", kv)
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// A store that applies at every batch and one that waits must agree on
// everything a reader can see: digests and every page of a scan.
func TestLazyAndEagerStoresAgree(t *testing.T) {
	dir := t.TempDir()
	eager := openWith(t, filepath.Join(dir, "eager.db"), Options{applyEvery: -1})
	waits := openWith(t, filepath.Join(dir, "lazy.db"), lazy)
	steps := []func(s *Store){
		func(s *Store) { commit(t, s, "1.1", put("a", "1")) },
		func(s *Store) { commit(t, s, "1.2", put("b", "2")) },
		func(s *Store) { commit(t, s, "1.3", put("d", "4")) },
		func(s *Store) { commit(t, s, "1.4", del("b")) },
		func(s *Store) { commit(t, s, "1.5", put("c", "3")) },
		func(s *Store) { commit(t, s, "1.6", put("a", "1b")) },
		func(s *Store) { mustVote(t, s, "1.7", del("d"), yes) },
		func(s *Store) { mustVote(t, s, "1.8", put("e", "5"), yes) },
	}
	for i, step := range steps {
		step(eager)
		if i == 2 {
			// Some of the lazy store's data in kv, some in memory.
			waits.mu.Lock()
			_, err := waits.w.inTx(waits.applyAllLocked, nil)
			waits.view.mu.Lock()
			waits.publishLocked()
			waits.view.mu.Unlock()
			waits.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
		}
		step(waits)
	}
	if eager.Stats().Applies == 0 || waits.Stats().Applies != 1 {
		t.Fatalf("applies: eager %d, lazy %d; want some, and 1", eager.Stats().Applies, waits.Stats().Applies)
	}
	if d1, d2 := digest(t, eager), digest(t, waits); d1 != d2 {
		t.Fatalf("digests differ: eager %+v, lazy %+v", d1, d2)
	}
	for _, limit := range []int{1, 2, 3, 10} {
		if p1, p2 := pagesOf(t, eager, limit), pagesOf(t, waits, limit); !slices.Equal(p1, p2) {
			t.Fatalf("scan by %d: eager %q, lazy %q", limit, p1, p2)
		}
	}
	got, err := waits.Read(ctx, "a", "b", "c", "d", "e")
	if err != nil {
		t.Fatal(err)
	}
	want, err := eager.Read(ctx, "a", "b", "c", "d", "e")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got, want, sameState) {
		t.Fatalf("read: lazy %+v, eager %+v", got, want)
	}
}

func sameState(a, b protocol.KeyState) bool {
	return a.Key == b.Key && a.Pending == b.Pending && sameEntry(a.Entry, b.Entry) && sameEntry(a.Next, b.Next)
}

func sameEntry(a, b protocol.Entry) bool {
	return a.Found == b.Found && a.Version == b.Version && string(a.Value.Data) == string(b.Value.Data) && a.Value.Binary == b.Value.Binary
}

// pagesOf scans s whole by limit and describes every key it returns,
// page by page; keys a scan returns as not found and not held are left
// out (a catch-up skips them).
func pagesOf(t *testing.T, s *Store, limit int) []string {
	t.Helper()
	var out []string
	after := ""
	for {
		states, more, err := s.Scan(ctx, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		for _, ks := range states {
			if ks.Entry.Found || ks.Pending != "" {
				out = append(out, ks.Key+"="+string(ks.Entry.Value.Data)+"/"+ks.Pending+"/"+string(ks.Next.Value.Data))
			}
			after = ks.Key
		}
		if !more || len(states) == 0 {
			return out
		}
	}
}

// While a batch that changes kv commits, and until readers see the
// memory that goes with it, no reader may look: it would see kv of after
// and memory of before (a write applied, another not yet shown).
func TestReadersWaitWhileKVChanges(t *testing.T) {
	var changed, excluded, seen int
	var s *Store
	s = openWith(t, filepath.Join(t.TempDir(), "p.db"), Options{applyEvery: -1, atCommit: func(changesKV bool) {
		if !changesKV {
			return
		}
		changed++
		if s.view.mu.TryRLock() {
			s.view.mu.RUnlock()
			seen++
			return
		}
		excluded++
	}})
	commit(t, s, "1.1", put("a", "1"))
	commit(t, s, "1.2", put("a", "2"))
	if changed == 0 || seen != 0 {
		t.Fatalf("of %d commits that changed kv, a reader could look during %d (kept out of %d)", changed, seen, excluded)
	}
	if got := mustRead(t, s, "a"); string(got.Entry.Value.Data) != "2" {
		t.Fatalf("read a: %+v, want 2", got)
	}
}

// Readers take no write lock: a reader in the middle of a long read
// (a digest, a page of a scan) does not hold the writer up.
func TestReadersLeaveTheWriterFree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s := openWith(t, path, lazy)
	commit(t, s, "1.1", put("a", "1"))
	rtx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rtx.Rollback()
	if _, _, err := s.pin(ctx, rtx, ""); err != nil {
		t.Fatal(err)
	}
	// Another writer that will not wait: it gets the write lock at once,
	// or fails with "database is locked".
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=0&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wtx, err := db.Begin()
	if err != nil {
		t.Fatalf("a writer could not begin while a reader read: %v", err)
	}
	wtx.Rollback()
}

// Past the bound on the bytes waiting in memory, everything goes to kv
// in the next batch, so that memory stays bounded whatever the load.
func TestMemoryWaitingIsBounded(t *testing.T) {
	s := openWith(t, filepath.Join(t.TempDir(), "p.db"), lazy)
	value := string(make([]byte, 1<<20))
	for i := range maxUnappliedBytes>>20 + 2 {
		commit(t, s, fmt.Sprintf("1.%d", i+1), put(fmt.Sprintf("k%d", i), value))
	}
	s.mu.Lock()
	waiting := s.overBytes
	s.mu.Unlock()
	if waiting >= maxUnappliedBytes || s.Stats().Applies == 0 {
		t.Fatalf("%d bytes wait in memory after %d applies, want under %d", waiting, s.Stats().Applies, maxUnappliedBytes)
	}
}

// Cycles that apply a range of keys at a time, while commits go on to
// keys of ranges already done: readers must see the same as a store that
// applies everything at once, and so must a copy taken as a crash would
// leave it, whose commits of the cycle under way are still to apply.
func TestApplyCyclesStepByStep(t *testing.T) {
	dir := t.TempDir()
	eager := openWith(t, filepath.Join(dir, "eager.db"), Options{applyEvery: -1})
	steps := openWith(t, filepath.Join(dir, "steps.db"), Options{applyEvery: time.Hour, stepEveryBatch: true})
	mirrored(t, eager, steps, 240, 7, 1)
	steps.mu.Lock()
	waiting, applies := len(steps.over), steps.stats.applies.Load()
	steps.mu.Unlock()
	if waiting == 0 || applies < 2 {
		t.Fatalf("%d writes waiting after %d cycles: the test needs cycles done and writes left for the next", waiting, applies)
	}
	if d1, d2 := digest(t, eager), digest(t, steps); d1 != d2 {
		t.Fatalf("digests differ: eager %+v, by steps %+v", d1, d2)
	}
	crashed := filepath.Join(dir, "crashed.db")
	copyDB(t, filepath.Join(dir, "steps.db"), crashed)
	c := openWith(t, crashed, lazy)
	if d1, d2 := digest(t, eager), digest(t, c); d1 != d2 {
		t.Fatalf("digests differ after a crash: eager %+v, reopened %+v", d1, d2)
	}
}

// A cycle done puts every transaction committed before it began wholly
// in kv; a commit made during the cycle, to a key of a range already
// done, waits for the next cycle, and a crash before then does not lose
// it (the vote log keeps it).
func TestApplyCycleKeepsLaterCommits(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.db")
	s := openWith(t, path, Options{applyEvery: time.Hour, stepEveryBatch: true})
	var ops []protocol.Op
	want := map[string]string{}
	for i := range 24 {
		k := fmt.Sprintf("k%02d", i)
		ops = append(ops, protocol.Op{Kind: protocol.OpPut, Key: k, Value: protocol.Value{Data: []byte("first")}})
		want[k] = "first"
	}
	commit(t, s, "1.1", txn(ops...)) // its commit's batch begins a cycle and applies k00's range
	commit(t, s, "1.2", put("k00", "second"))
	for cycling(s) {
		mustVote(t, s, "1.3", txn(protocol.Op{Kind: protocol.OpGet, Key: "k01"}), protocol.VoteReadOnly) // a batch: a step
	}
	if kv := rawKV(t, path); !maps(kv, want) {
		t.Fatalf("kv after the cycle: %v, want every key of 1.1: %v", kv, want)
	}
	commit(t, s, "1.4", put("k05", "third")) // a commit during no cycle waits
	crashed := filepath.Join(dir, "crashed.db")
	copyDB(t, path, crashed)
	c := openWith(t, crashed, lazy)
	if got := mustRead(t, c, "k00"); string(got.Entry.Value.Data) != "second" {
		t.Fatalf("after a crash, k00 is %q, want the commit made during the cycle, \"second\"", got.Entry.Value.Data)
	}
}

func cycling(s *Store) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cycle != nil
}

// A step takes its range's keys and at most lateBudget more of the keys
// committed since the cycle began (more than that wait for the next
// cycle), however the late keys fall: here all of them in the last
// range, which the keys the cycle began with leave wide open.
func TestApplyStepsStayBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s := openWith(t, path, Options{applyEvery: time.Hour, stepEveryBatch: true})
	want := map[string]string{}
	var low, high []protocol.Op
	for i := range applySteps {
		k := fmt.Sprintf("a%02d", i)
		low = append(low, protocol.Op{Kind: protocol.OpPut, Key: k, Value: protocol.Value{Data: []byte(k)}})
		want[k] = k
	}
	for i := range 5 * lateBudget {
		k := fmt.Sprintf("z%03d", i)
		high = append(high, protocol.Op{Kind: protocol.OpPut, Key: k, Value: protocol.Value{Data: []byte(k)}})
		want[k] = k
	}
	waiting := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.over)
	}
	commit(t, s, "1.1", txn(low...))  // its batch begins a cycle of one key a range
	commit(t, s, "1.2", txn(high...)) // late keys, every one past the last range's first key
	most, steps := 0, 0
	for ; waiting() > 0; steps++ {
		if steps == 10*applySteps {
			t.Fatalf("%d writes still waiting after %d steps", waiting(), steps)
		}
		before := waiting()
		mustVote(t, s, fmt.Sprintf("2.%d", steps), txn(protocol.Op{Kind: protocol.OpGet, Key: "a00"}), protocol.VoteReadOnly) // a batch: a step
		most = max(most, before-waiting())
	}
	if most > 1+lateBudget {
		t.Fatalf("a step applied %d keys: want at most its range's 1 and %d late keys", most, lateBudget)
	}
	if steps <= applySteps {
		t.Fatalf("everything applied in %d steps: the late keys over budget should have waited for a second cycle", steps)
	}
	if kv := rawKV(t, path); !maps(kv, want) {
		t.Fatalf("kv holds %d keys, want all %d", len(kv), len(want))
	}
}

// ObserveBatch tells each batch's time and whether it applied writes to
// kv: a batch that only votes, then the commit's, whose writes are
// applied at once here.
func TestObserveBatchTellsApplyWork(t *testing.T) {
	var applied []bool
	s := openWith(t, filepath.Join(t.TempDir(), "p.db"), Options{applyEvery: -1, ObserveBatch: func(d time.Duration, a bool) {
		if d <= 0 {
			t.Errorf("a batch took %v", d)
		}
		applied = append(applied, a)
	}})
	mustVote(t, s, "1.1", put("a", "1"), protocol.VoteYes)
	if err := s.Commit(ctx, "1.1"); err != nil {
		t.Fatal(err)
	}
	if want := []bool{false, true}; !slices.Equal(applied, want) {
		t.Fatalf("batches applied %v, want %v", applied, want)
	}
}

// mirrored runs n transactions, each a put or a delete of one of 80 keys
// at random (seed), on both stores, which must vote alike, and checks
// that they read alike after every readEvery-th.
func mirrored(t *testing.T, eager, other *Store, n, readEvery int, seed uint64) {
	t.Helper()
	keys := make([]string, 80)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%02d", i)
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	for i := range n {
		k := keys[rng.IntN(len(keys))]
		tx := put(k, fmt.Sprint(i))
		if rng.IntN(5) == 0 {
			tx = del(k)
		}
		id := fmt.Sprintf("1.%d", i+1)
		v1, err1 := eager.Prepare(ctx, id, tx)
		v2, err2 := other.Prepare(ctx, id, tx)
		if err1 != nil || err2 != nil || !sameVote(v1, v2) {
			t.Fatalf("prepare %s: votes %+v (%v) and %+v (%v)", id, v1, err1, v2, err2)
		}
		if v1.Kind == yes && (eager.Commit(ctx, id) != nil || other.Commit(ctx, id) != nil) {
			t.Fatalf("commit %s failed", id)
		}
		if i%readEvery != 0 {
			continue
		}
		got, err := other.Read(ctx, keys...)
		if err != nil {
			t.Fatal(err)
		}
		want, err := eager.Read(ctx, keys...)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(got, want, sameState) {
			t.Fatalf("after %d commits: read %+v, want %+v", i+1, got, want)
		}
	}
}
