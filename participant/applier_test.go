package participant

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twopc/twopc/protocol"
)

// besideTheWriter takes a step of a cycle after every batch, beside the
// writer, as a store under load does.
var besideTheWriter = Options{applyEvery: time.Nanosecond}

// While a step writes kv, prepares, commits and reads go on, and see the
// writes the step is copying; a key committed again meanwhile keeps its
// newer write, which the step's end must not drop.
func TestPreparesDoNotWaitForApplySteps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	opts := besideTheWriter
	opts.holdStep = func() { once.Do(func() { close(held); <-release }) }
	s := openWith(t, path, opts)
	var ops []protocol.Op
	for i := range applySteps { // a key a range, so that the first step has one
		k := fmt.Sprintf("a%02d", i)
		ops = append(ops, protocol.Op{Kind: protocol.OpPut, Key: k, Value: protocol.Value{Data: []byte("first")}})
	}
	commit(t, s, "1.1", txn(ops...))
	<-held // the step of a00's range, after the commit's batch

	// A writer that waited for the step would not answer these until it
	// ends: the deadline turns that into a failure, not a hang.
	answered := make(chan error, 1)
	go func() {
		v, err := s.Prepare(ctx, "1.2", put("a00", "second"))
		if err == nil && v.Kind != yes {
			err = fmt.Errorf("vote %+v", v)
		}
		if err == nil {
			err = s.Commit(ctx, "1.2")
		}
		answered <- err
	}()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatalf("prepare and commit while a step runs: %v", err)
		}
	case <-time.After(time.Minute):
		close(release)
		t.Fatal("a prepare and its commit waited a minute for a step that copies one key")
	}
	if got := mustRead(t, s, "a00"); string(got.Entry.Value.Data) != "second" {
		t.Fatalf("a00 reads %q while the step runs, want the newer commit's \"second\"", got.Entry.Value.Data)
	}
	if kv := rawKV(t, path); len(kv) != 0 {
		t.Fatalf("kv holds %v before the held step committed", kv)
	}
	close(release)
	if err := s.Close(); err != nil { // waits for the step, then applies what waits
		t.Fatal(err)
	}
	if kv := rawKV(t, path); kv["a00"] != "second" || kv["a01"] != "first" || len(kv) != applySteps {
		t.Fatalf("kv after close: a00 %q, a01 %q, %d keys; want \"second\", \"first\", %d", kv["a00"], kv["a01"], len(kv), applySteps)
	}
}

// Steps beside the writer, with commits and reads going on: readers see
// what a store that applies everything in the batch shows, the writer's
// cache of kv stays kv's, and what is durable after a close is the same.
func TestApplyStepsBesideTheWriter(t *testing.T) {
	dir := t.TempDir()
	eager := openWith(t, filepath.Join(dir, "eager.db"), Options{applyEvery: -1})
	path := filepath.Join(dir, "beside.db")
	beside := openWith(t, path, besideTheWriter)
	mirrored(t, eager, beside, 600, 1, 3)
	if beside.Stats().Applies < 2 {
		t.Fatalf("%d cycles done: the test needs steps to have run", beside.Stats().Applies)
	}
	want := digest(t, eager)
	if d := digest(t, beside); d != want {
		t.Fatalf("digests differ: eager %+v, beside %+v", want, d)
	}
	settle(beside)
	cacheMatchesKV(t, beside)
	if err := beside.Close(); err != nil {
		t.Fatal(err)
	}
	if d := digest(t, openWith(t, path, lazy)); d != want {
		t.Fatalf("digests differ after a close: eager %+v, reopened %+v", want, d)
	}
}

// settle waits until no step runs. No batch comes meanwhile, so none
// begins after it.
func settle(s *Store) {
	for {
		s.mu.Lock()
		idle := s.stepping == nil
		s.mu.Unlock()
		if idle {
			return
		}
		runtime.Gosched()
	}
}

// A catch-up's reset, while a step runs, waits for the step: the step's
// writes (from before the reset) must not land in kv after it.
func TestInstallWaitsForApplyStep(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	held, release, waits := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var once, waited sync.Once
	opts := besideTheWriter
	opts.holdStep = func() { once.Do(func() { close(held); <-release }) }
	opts.awaitingStep = func() { waited.Do(func() { close(waits) }) }
	s := openWith(t, path, opts)
	var ops []protocol.Op
	for i := range applySteps {
		ops = append(ops, protocol.Op{Kind: protocol.OpPut, Key: fmt.Sprintf("a%02d", i), Value: protocol.Value{Data: []byte("old")}})
	}
	commit(t, s, "1.1", txn(ops...))
	<-held
	installed := make(chan error, 1)
	go func() {
		err := s.Install(ctx, &protocol.Install{Reset: true, Fence: "2.0"})
		if err == nil {
			err = s.Install(ctx, &protocol.Install{Fence: "2.0", Writes: []protocol.Write{{Key: "b", Entry: protocol.Entry{Found: true, Value: protocol.Value{Data: []byte("new")}, Version: 1}}}})
		}
		installed <- err
	}()
	select {
	case <-waits: // the reset waits for the step
	case err := <-installed:
		close(release)
		t.Fatalf("a reset ran while a step was still to write kv (%v)", err)
	}
	close(release)
	if err := <-installed; err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, s, "a00"); got.Entry.Found {
		t.Fatalf("a00 reads %+v after a reset", got.Entry)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if kv := rawKV(t, path); len(kv) != 1 || kv["b"] != "new" {
		t.Fatalf("kv after the reset and close: %v, want b alone", kv)
	}
}

// A step that fails (here SQLite refuses its writes) stops the store as a
// failed batch does: OnFail once, no more prepares or reads. Every commit
// it acknowledged is durable in the vote log, so a restart serves it.
func TestFailedApplyStepStopsTheStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	calls := make(chan error, 4)
	var s *Store
	var once sync.Once
	opts := besideTheWriter
	opts.OnFail = func(err error) { calls <- err }
	opts.holdStep = func() {
		once.Do(func() {
			// s is set before the first commit, whose batch starts the step.
			if _, err := s.applier.conn.ExecContext(ctx, "PRAGMA query_only = ON"); err != nil {
				t.Errorf("refusing the step's writes: %v", err)
			}
		})
	}
	s = openWith(t, path, opts)
	var ops []protocol.Op
	for i := range applySteps { // a key a range, so that the first step has one
		ops = append(ops, protocol.Op{Kind: protocol.OpPut, Key: fmt.Sprintf("a%02d", i), Value: protocol.Value{Data: []byte("v")}})
	}
	commit(t, s, "1.1", txn(ops...))
	select {
	case err := <-calls:
		if !strings.Contains(err.Error(), "apply step") {
			t.Fatalf("OnFail(%v), want the step's error", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("no OnFail a minute after the step's writes were refused")
	}
	if _, err := s.Prepare(ctx, "1.2", put("b", "v")); err == nil {
		t.Fatal("prepare succeeded after a failed step")
	}
	if _, err := s.Read(ctx, "a00"); err == nil {
		t.Fatal("read served by a store stopped by a failed step")
	}
	if _, err := s.Digest(ctx); err == nil {
		t.Fatal("digest served by a store stopped by a failed step")
	}
	s.Close()
	if n := len(calls); n != 0 {
		t.Fatalf("OnFail called %d more times, want once", n)
	}
	again := openWith(t, path, lazy)
	for _, op := range ops {
		if got := mustRead(t, again, op.Key); string(got.Entry.Value.Data) != "v" {
			t.Fatalf("%s reads %+v after a restart, want the acknowledged commit's \"v\"", op.Key, got.Entry)
		}
	}
}
