package consensus

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twopc/twopc/txlog"
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
	for _, want := range []string{" raftlog 2\n", " entry 2 2 epoch 2\n", " entry 3 2 staged 2.1 p1,p2 \"k\"\n", " entry 1 1 -\n"} {
		if !strings.Contains(string(data), want) {
			t.Fatalf("file lacks %q:\n%s", want, data)
		}
	}
}

// A torn last line is dropped: it was never acknowledged. Damage before
// the last line is refused, never skipped.
func TestWALTornTail(t *testing.T) {
	path, data := twoEntries(t)
	end := lastLineEnd(data)
	torn := []byte(string(data))
	copy(torn[end-5:], "\n\n\n\n") // the hard line's end never reached the disk
	must(t, os.WriteFile(path, torn, 0o644))

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
	if sc.Bytes != lastLineEnd(data) || sc.Torn {
		t.Errorf("scanned %d bytes (torn %v), want %d of %d, the rest padding", sc.Bytes, sc.Torn, lastLineEnd(data), len(data))
	}
	if sc.All.Epoch != 9 {
		t.Errorf("All: epoch %d, want the last entry's 9", sc.All.Epoch)
	}
}

// lastLineEnd is where the last line of a padded raft log ends.
func lastLineEnd(data []byte) int { return len(bytes.TrimRight(data, "\n")) + 1 }

// A file past its last line is blank lines, so that an append overwrites
// padding and its fsync does not change the file's length; the padding
// grows a chunk at a time, and everything saved reads back.
func TestWALPadding(t *testing.T) {
	defer func(n int64) { txlog.PadBytes = n }(txlog.PadBytes)
	txlog.PadBytes = 512
	path := filepath.Join(t.TempDir(), "c1.txlog")
	w, _ := openTestWAL(t, path)
	hs := raftpb.HardState{Term: 1, Commit: 1}
	must(t, w.save(raftpb.Snapshot{}, []raftpb.Entry{ent(1, 1, "epoch 1")}, &hs))
	length := func() int64 {
		fi, err := os.Stat(path)
		must(t, err)
		return fi.Size()
	}
	before := length()
	must(t, w.save(raftpb.Snapshot{}, []raftpb.Entry{ent(2, 1, "abort 1.1")}, &hs))
	if after := length(); after != before || after <= w.sizeNow() {
		t.Fatalf("a small append changed the file's length from %d to %d (last line ends at %d)", before, after, w.sizeNow())
	}
	for i := uint64(3); i <= 100; i++ { // past several chunks
		must(t, w.save(raftpb.Snapshot{}, []raftpb.Entry{ent(i, 1, fmt.Sprintf("abort 1.%d", i))}, &hs))
	}
	w.close()
	data, _ := os.ReadFile(path)
	if int64(len(data)) <= w.sizeNow() || !isBlank(data[w.sizeNow():]) {
		t.Fatalf("the file (%d bytes) is not blank past its last line (%d)", len(data), w.sizeNow())
	}
	_, ld := openTestWAL(t, path)
	if len(ld.entries) != 100 || string(ld.entries[99].Data) != "abort 1.100" {
		t.Fatalf("reloaded %d entries", len(ld.entries))
	}
}

// A write torn over the padding may leave any of its sectors: a partial
// line, blanks, then a whole later line of the same write. None of it
// was acknowledged: it is dropped and blanked, so that a shorter later
// write is never followed by the stale line, which would read as an
// entry.
func TestWALTornWriteOverPadding(t *testing.T) {
	path, data := twoEntries(t)
	end := lastLineEnd(data)
	// One write of two entries, the first longer than two sectors, whose
	// first whole sector was lost: it reads as the padding it overwrote.
	third, _ := appendEntry(nil, ent(3, 1, `staged 1.2 p1 "`+strings.Repeat("k", 1200)+`"`))
	fourth, _ := appendEntry(nil, ent(4, 1, "abort 1.3"))
	copy(data[end:], append(third, fourth...))
	lost := (end/512 + 1) * 512
	copy(data[lost:lost+512], bytes.Repeat([]byte{'\n'}, 512))
	must(t, os.WriteFile(path, data, 0o644))

	w, ld := openTestWAL(t, path)
	if len(ld.entries) != 2 || ld.hard.Commit != 1 {
		t.Fatalf("after a torn write: %d entries, hard %+v", len(ld.entries), ld.hard)
	}
	if on, _ := os.ReadFile(path); bytes.Contains(on, []byte("abort 1.3")) {
		t.Fatal("the torn write's whole line is still in the file")
	}
	must(t, w.save(raftpb.Snapshot{}, []raftpb.Entry{ent(3, 2, "epoch 2")}, &raftpb.HardState{Term: 2, Commit: 3}))
	w.close()
	_, ld = openTestWAL(t, path)
	if len(ld.entries) != 3 || string(ld.entries[2].Data) != "epoch 2" || ld.hard.Term != 2 {
		t.Fatalf("after the next write: entries %+v, hard %+v", ld.entries, ld.hard)
	}
}

// A file of format 1 (no padding, written by an older twopc) loads as it
// did, and is rewritten in format 2.
func TestWALFormat1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c1.txlog")
	b := txlog.AppendFramed(nil, []byte(walHeaderV1))
	b, _ = appendEntry(b, ent(1, 1, "epoch 1"))
	b, _ = appendEntry(b, ent(2, 1, "abort 1.1"))
	b = appendHard(b, raftpb.HardState{Term: 1, Vote: 1, Commit: 2})
	must(t, os.WriteFile(path, b[:len(b)-3], 0o644)) // a torn hard line
	w, ld := openTestWAL(t, path)
	if len(ld.entries) != 2 || ld.hard.Commit != 0 {
		t.Fatalf("format 1: entries %+v, hard %+v", ld.entries, ld.hard)
	}
	must(t, w.save(raftpb.Snapshot{}, nil, &raftpb.HardState{Term: 1, Vote: 1, Commit: 2}))
	w.close()
	data, _ := os.ReadFile(path)
	if !bytes.Contains(firstLine(data), []byte(walHeader)) || !isBlank(data[lastLineEnd(data):]) || len(data) == lastLineEnd(data) {
		t.Fatalf("not rewritten as format 2:\n%s", bytes.TrimRight(data, "\n"))
	}
	_, ld = openTestWAL(t, path)
	if len(ld.entries) != 2 || ld.hard.Commit != 2 {
		t.Fatalf("reopened: entries %+v, hard %+v", ld.entries, ld.hard)
	}
}

// twoEntries saves entries 1 and 2 and hard state 1/1 in a new raft log,
// closed, and returns its path and its bytes.
func twoEntries(t *testing.T) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c1.txlog")
	w, _ := openTestWAL(t, path)
	hs := raftpb.HardState{Term: 1, Commit: 1}
	must(t, w.save(raftpb.Snapshot{}, []raftpb.Entry{ent(1, 1, "epoch 1"), ent(2, 1, "abort 1.1")}, &hs))
	w.close()
	data, err := os.ReadFile(path)
	must(t, err)
	return path, data
}
