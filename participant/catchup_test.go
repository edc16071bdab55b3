package participant

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/twopc/twopc/protocol"
)

// copyAll copies src to dst the way a coordinator catches a participant
// up, page by page, taking each key's committed entry (nothing is
// pending in these tests' sources when they copy).
func copyAll(t *testing.T, src, dst *Store, page int, fence string) {
	t.Helper()
	if err := dst.Install(ctx, &protocol.Install{Reset: true, Fence: fence}); err != nil {
		t.Fatal(err)
	}
	after := ""
	for {
		states, more, err := src.Scan(ctx, after, page)
		if err != nil {
			t.Fatal(err)
		}
		in := &protocol.Install{Fence: fence}
		for _, ks := range states {
			in.Writes = append(in.Writes, protocol.Write{Key: ks.Key, Entry: ks.Entry})
			after = ks.Key
		}
		if err := dst.Install(ctx, in); err != nil {
			t.Fatal(err)
		}
		if !more {
			return
		}
	}
}

func digest(t *testing.T, s *Store) protocol.Digest {
	t.Helper()
	d, err := s.Digest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A replica with other data, a prepared transaction and a tombstone
// becomes an exact copy, whatever the page size; the copy outlives a
// restart.
func TestCatchUpCopiesExactly(t *testing.T) {
	dir := t.TempDir()
	src, dst := open(t, filepath.Join(dir, "src.db")), open(t, filepath.Join(dir, "dst.db"))
	for i := range 25 {
		key := fmt.Sprintf("k%02d", i)
		mustVote(t, src, fmt.Sprintf("1.%d", i+1), put(key, "v"+key), yes)
		if err := src.Commit(ctx, fmt.Sprintf("1.%d", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	mustVote(t, src, "1.90", put("k03", "again"), yes) // version 2
	if err := src.Commit(ctx, "1.90"); err != nil {
		t.Fatal(err)
	}
	mustVote(t, dst, "1.1", put("stale", "x"), yes)
	if err := dst.Commit(ctx, "1.1"); err != nil {
		t.Fatal(err)
	}
	mustVote(t, dst, "1.2", put("k05", "held"), yes) // prepared, never resolved
	for i, page := range []int{1, 7, 25, 100} {
		t.Run(fmt.Sprint("page ", page), func(t *testing.T) {
			copyAll(t, src, dst, page, fmt.Sprintf("2.%d", i+1))
			if got, want := digest(t, dst), digest(t, src); got != want {
				t.Fatalf("copy digest %+v, source %+v", got, want)
			}
		})
	}
	// The dropped prepare is gone for good: its commit is a no-op
	// reported as aborted here, and it holds no lock.
	if err := dst.Commit(ctx, "1.2"); err == nil {
		t.Fatal("commit of a transaction the catch-up dropped succeeded")
	}
	if ks := mustRead(t, dst, "k05"); ks.Pending != "" || string(ks.Entry.Value.Data) != "vk05" {
		t.Fatalf("k05 after the catch-up: %+v", ks)
	}
	want := digest(t, dst)
	path := dst.path
	dst.Close()
	dst = open(t, path)
	if got := digest(t, dst); got != want {
		t.Fatalf("after a restart: digest %+v, want %+v", got, want)
	}
}

// The fence refuses prepares sent before the catch-up, also after a
// restart, and accepts later ones.
func TestCatchUpFence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s := open(t, path)
	if err := s.Install(ctx, &protocol.Install{Reset: true, Fence: "3.10"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, path)
	for _, id := range []string{"2.99", "3.9", "3.1"} {
		if v := mustVote(t, s, id, put("a", id), no); v.Conflict {
			t.Fatalf("prepare %s: a conflict, want a refusal: %+v", id, v)
		}
	}
	mustVote(t, s, "3.10", put("a", "x"), yes)
	mustVote(t, s, "4.1", put("b", "x"), yes)
}

// Steps of a catch-up that the network delayed until a later one began
// are refused: a reset of an earlier fence (it would wipe the copy, or a
// participant already back in the write set), and a step of another
// fence (it would write stale entries over the copy). The store goes on.
func TestLateCatchUpStepsRefused(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "p.db"))
	w := func(v string) []protocol.Write {
		return []protocol.Write{{Key: "k", Entry: protocol.Entry{Found: true, Value: protocol.Value{Data: []byte(v)}, Version: 1}}}
	}
	if err := s.Install(ctx, &protocol.Install{Reset: true, Fence: "3.10"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Install(ctx, &protocol.Install{Fence: "3.10", Writes: w("new")}); err != nil {
		t.Fatal(err)
	}
	for _, late := range []*protocol.Install{
		{Reset: true, Fence: "3.9"},
		{Reset: true, Fence: "3.10"},
		{Fence: "3.9", Writes: w("stale")},
		{Fence: "3.11", Writes: w("stale")},
		{Writes: w("stale")},
	} {
		if err := s.Install(ctx, late); err == nil {
			t.Fatalf("install %+v accepted", late)
		}
	}
	if ks := mustRead(t, s, "k"); string(ks.Entry.Value.Data) != "new" {
		t.Fatalf("k = %q after late steps, want new", ks.Entry.Value.Data)
	}
	if err := s.Install(ctx, &protocol.Install{Reset: true, Fence: "4.1"}); err != nil {
		t.Fatalf("a later catch-up: %v", err)
	}
}

// Scan finds keys that only a prepared transaction writes, and the
// pending entry of keys that have one, within the page's stretch.
func TestScanSeesPendingWrites(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "p.db"))
	for i, k := range []string{"b", "d", "f"} {
		mustVote(t, s, fmt.Sprintf("1.%d", i+1), put(k, "v"), yes)
		if err := s.Commit(ctx, fmt.Sprintf("1.%d", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	mustVote(t, s, "1.10", txn(
		protocol.Op{Kind: protocol.OpPut, Key: "a", Value: protocol.Value{Data: []byte("new")}},
		protocol.Op{Kind: protocol.OpDelete, Key: "d"},
		protocol.Op{Kind: protocol.OpPut, Key: "e", Value: protocol.Value{Data: []byte("new")}},
		protocol.Op{Kind: protocol.OpPut, Key: "g", Value: protocol.Value{Data: []byte("new")}},
	), yes)
	var pages [][]string
	after := ""
	for {
		states, more, err := s.Scan(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		var page []string
		for _, ks := range states {
			desc := ks.Key
			if ks.Entry.Found {
				desc += "=" + string(ks.Entry.Value.Data)
			}
			if ks.Pending != "" {
				desc += fmt.Sprintf(" (%s: found %v)", ks.Pending, ks.Next.Found)
			}
			page = append(page, desc)
			after = ks.Key
		}
		pages = append(pages, page)
		if !more {
			break
		}
	}
	want := [][]string{
		{"a (1.10: found true)", "b=v", "d=v (1.10: found false)"},
		{"e (1.10: found true)", "f=v", "g (1.10: found true)"},
	}
	if len(pages) != len(want) {
		t.Fatalf("pages %q, want %q", pages, want)
	}
	for i := range want {
		if !slices.Equal(pages[i], want[i]) {
			t.Fatalf("pages %q, want %q", pages, want)
		}
	}
}
