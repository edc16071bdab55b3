package participant

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/twopc/twopc/protocol"
)

func at(term uint64) context.Context { return protocol.WithTerm(ctx, term) }

// wantStale fails unless err is a refusal of term sent by a store that
// has seen term seen.
func wantStale(t *testing.T, what string, err error, seen, sent uint64) {
	t.Helper()
	var stale *protocol.StaleTermError
	if !errors.As(err, &stale) || stale.Seen != seen || stale.Sent != sent {
		t.Fatalf("%s: err %v, want a stale term refusal (seen %d, sent %d)", what, err, seen, sent)
	}
}

// A term is kept across a restart, whether a read or a write raised it.
func TestHigherTermSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s := open(t, path)
	if _, err := s.Read(at(3), "k"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, path)
	if got := s.Stats().Term; got != 3 {
		t.Fatalf("term after a read of term 3 and a reopen: %d", got)
	}
	if _, err := s.Prepare(at(5), "5.1", put("k", "v")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, path)
	if got := s.Stats().Term; got != 5 {
		t.Fatalf("term after a prepare of term 5 and a reopen: %d", got)
	}
	_, err := s.Read(at(4), "k")
	wantStale(t, "read of term 4 after a reopen", err, 5, 4)
}

// Once a store has heard term 5, every call of term 4 is refused, changes
// nothing, and is counted; calls without a term (operators' tools, the
// resolver) still go through.
func TestLowerTermRefused(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "p.db"))
	new, old := at(5), at(4)
	if _, err := s.Prepare(old, "4.1", put("held", "old")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Prepare(new, "5.1", put("k", "v")); err != nil || v.Kind != yes {
		t.Fatalf("prepare of term 5: %+v %v", v, err)
	}
	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"prepare", func(c context.Context) error { _, err := s.Prepare(c, "4.2", put("x", "old")); return err }},
		{"commit", func(c context.Context) error { return s.Commit(c, "4.1") }},
		{"abort", func(c context.Context) error { return s.Abort(c, "5.1") }},
		{"install", func(c context.Context) error { return s.Install(c, &protocol.Install{Reset: true, Fence: "9.1"}) }},
		{"read", func(c context.Context) error { _, err := s.Read(c, "k"); return err }},
		{"scan", func(c context.Context) error { _, _, err := s.Scan(c, "", 10); return err }},
		{"digest", func(c context.Context) error { _, err := s.Digest(c); return err }},
		{"prepared", func(c context.Context) error { _, err := s.PreparedTxs(c); return err }},
		{"batch", func(c context.Context) error {
			rs := s.Batch(c, []protocol.Call{{Kind: protocol.MsgRead, Keys: []string{"k"}}, {Kind: protocol.MsgCommit, TxID: "4.1"}})
			return errors.Join(rs[0].Err, rs[1].Err)
		}},
	}
	for _, c := range calls {
		before := s.Stats().StaleTermRefusals
		wantStale(t, c.name, c.call(old), 5, 4)
		if got := s.Stats().StaleTermRefusals - before; got < 1 {
			t.Errorf("%s: refusal not counted", c.name)
		}
	}
	pts, err := s.PreparedTxs(ctx)
	if err != nil || len(pts) != 2 || pts[0].TxID != "4.1" || pts[1].TxID != "5.1" {
		t.Fatalf("after the refusals, prepared: %+v %v; want 4.1 and 5.1, untouched", pts, err)
	}
	if ks := mustRead(t, s, "x"); ks.Entry.Found || ks.Pending != "" {
		t.Fatalf("a refused prepare left %+v", ks)
	}
	// The newer coordinator, and the participant's own resolver (no
	// term), go on.
	if err := s.Commit(new, "5.1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Abort(ctx, "4.1"); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().Term; got != 5 {
		t.Fatalf("term %d, want 5", got)
	}
}

// A write of a lower term queued behind a raise, in the same SQLite
// transaction, is refused: the writer checks terms in the order it
// applies requests, not only as they arrive.
func TestLowerTermRefusedInTheRaisingBatch(t *testing.T) {
	held, release := make(chan struct{}), make(chan struct{})
	var first sync.Once
	s, err := Open(filepath.Join(t.TempDir(), "p.db"), Options{holdBatch: func() {
		first.Do(func() { close(held); <-release })
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var raise, late error
	var wg sync.WaitGroup
	wg.Go(func() { _, raise = s.Prepare(at(6), "6.1", put("a", "v")) })
	<-held // the writer has taken the prepare of term 6, not applied it
	wg.Go(func() { _, late = s.Prepare(at(5), "5.1", put("b", "v")) })
	for len(s.reqs) < 1 {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if raise != nil {
		t.Fatal(raise)
	}
	wantStale(t, "prepare of term 5 behind one of term 6", late, 6, 5)
	if ks := mustRead(t, s, "b"); ks.Pending != "" {
		t.Fatalf("the refused prepare holds b: %+v", ks)
	}
}
