package consensus

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func ent(index, term uint64, data string) raftpb.Entry {
	return raftpb.Entry{Index: index, Term: term, Type: raftpb.EntryNormal, Data: []byte(data)}
}

func openTestWAL(t *testing.T, path string) (*wal, *loaded) {
	t.Helper()
	w, ld, err := openWAL(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.close() })
	return w, ld
}

// What is saved is what a reopen loads: entries, a conflicting suffix
// replaced, the last hard state.
func TestWALReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c1.txlog")
	w, _ := openTestWAL(t, path)
	hs := raftpb.HardState{Term: 2, Vote: NodeID("c1"), Commit: 2}
	must(t, w.save(raftpb.Snapshot{}, []raftpb.Entry{ent(1, 1, ""), ent(2, 2, "epoch 2"), ent(3, 2, "staged 2.1 p1,p2 \"k\"")}, &hs))
	// Another leader's entry 3 replaces ours, and what followed it.
	hs = raftpb.HardState{Term: 3, Vote: NodeID("c2"), Commit: 3}
	must(t, w.save(raftpb.Snapshot{}, []raftpb.Entry{ent(3, 3, "epoch 3")}, &hs))
	w.close()

	_, ld := openTestWAL(t, path)
	if ld.hard.Term != 3 || ld.hard.Vote != NodeID("c2") || ld.hard.Commit != 3 {
		t.Fatalf("hard state %+v", ld.hard)
	}
	if len(ld.entries) != 3 || string(ld.entries[2].Data) != "epoch 3" || ld.entries[2].Term != 3 || len(ld.entries[0].Data) != 0 {
		t.Fatalf("entries %+v", ld.entries)
	}
	data, _ := os.ReadFile(path)
	for _, want := range []string{" raftlog 1\n", " entry 2 2 epoch 2\n", " entry 3 2 staged 2.1 p1,p2 \"k\"\n", " entry 1 1 -\n"} {
		if !strings.Contains(string(data), want) {
			t.Fatalf("file lacks %q:\n%s", want, data)
		}
	}
}

// A torn last line is cut: it was never acknowledged. Damage before the
// last line is refused, never skipped.
func TestWALTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c1.txlog")
	w, _ := openTestWAL(t, path)
	hs := raftpb.HardState{Term: 1, Commit: 1}
	must(t, w.save(raftpb.Snapshot{}, []raftpb.Entry{ent(1, 1, "epoch 1"), ent(2, 1, "abort 1.1")}, &hs))
	w.close()
	data, _ := os.ReadFile(path)
	must(t, os.WriteFile(path, data[:len(data)-5], 0o644)) // the hard line torn

	_, ld := openTestWAL(t, path)
	if len(ld.entries) != 2 || ld.hard.Term != 0 {
		t.Fatalf("after a torn hard line: entries %d, hard %+v", len(ld.entries), ld.hard)
	}
	damaged := []byte(string(data))
	i := strings.Index(string(damaged), "epoch 1")
	damaged[i] = 'E'
	must(t, os.WriteFile(path, damaged, 0o644))
	if _, _, err := openWAL(path); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("a damaged middle line: %v", err)
	}
}

// A snapshot replaces the entries it covers; a rewrite keeps the state,
// the later entries and the hard state.
func TestWALSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c1.txlog")
	w, _ := openTestWAL(t, path)
	hs := raftpb.HardState{Term: 1, Commit: 3}
	must(t, w.save(raftpb.Snapshot{}, []raftpb.Entry{ent(1, 1, "epoch 1"), ent(2, 1, "staged 1.1 p1 \"a\""), ent(3, 1, "staged 1.2 p1 \"b\""), ent(4, 1, "end 1.1")}, &hs))
	snap := raftpb.Snapshot{Data: []byte("format 4\nepoch 1\nstaged 1.1 p1 \"a\"\nstaged 1.2 p1 \"b\"\n"),
		Metadata: raftpb.SnapshotMetadata{Index: 3, Term: 1, ConfState: raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}
	must(t, w.rewrite(hs, snap, []raftpb.Entry{ent(4, 1, "end 1.1")}))
	w.close()

	_, ld := openTestWAL(t, path)
	if ld.snap.Metadata.Index != 3 || string(ld.snap.Data) != string(snap.Data) || len(ld.snap.Metadata.ConfState.Voters) != 3 {
		t.Fatalf("snapshot %+v", ld.snap)
	}
	if len(ld.entries) != 1 || ld.entries[0].Index != 4 || ld.hard.Commit != 3 {
		t.Fatalf("entries %+v, hard %+v", ld.entries, ld.hard)
	}
	recs, _, _, err := parseSnapshotData(ld.snap.Data)
	if err != nil || len(recs) != 4 {
		t.Fatalf("snapshot records %v %v", recs, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A copy of a raft log (fetched from a coordinator's host) reads as the
// file does, and is told from a txlog.
func TestScanBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c1.txlog")
	w, _ := openTestWAL(t, path)
	hs := raftpb.HardState{Term: 2, Commit: 2}
	must(t, w.save(raftpb.Snapshot{}, []raftpb.Entry{ent(1, 2, "epoch 2"), ent(2, 2, "remove p3"), ent(3, 2, "epoch 9")}, &hs))
	w.close()
	data, err := os.ReadFile(path)
	must(t, err)
	if !IsRaftLogBytes(data) || IsRaftLogBytes([]byte("epoch 1\n")) {
		t.Fatal("IsRaftLogBytes does not tell a raft log from another file")
	}
	sc, err := ScanBytes("copy", data)
	must(t, err)
	if sc.Term != 2 || sc.Commit != 2 || sc.Last != 3 || sc.Uncommitted != 1 || sc.State.Epoch != 2 || len(sc.State.Removed) != 1 || sc.State.Removed[0] != "p3" {
		t.Fatalf("scanned %+v, state %+v", sc, sc.State)
	}
	if sc.All.Epoch != 9 {
		t.Errorf("All: epoch %d, want the last entry's 9", sc.All.Epoch)
	}
}
