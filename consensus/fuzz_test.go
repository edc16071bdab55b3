package consensus

import (
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// FuzzParseWAL: whatever a raft log file holds, reading it returns an
// error or what it holds, never a panic; and what it holds is whole:
// entries contiguous, after the snapshot.
func FuzzParseWAL(f *testing.F) {
	var b []byte
	b = appendHard(append([]byte(nil), "f85b7287 raftlog 1\n"...), raftpb.HardState{Term: 2, Vote: 3, Commit: 2})
	for _, e := range []raftpb.Entry{ent(1, 1, ""), ent(2, 2, "epoch 2"), ent(3, 2, "staged 2.1 p1 \"k\"")} {
		b, _ = appendEntry(b, e)
	}
	f.Add(b)
	f.Add(appendSnapshot(append([]byte(nil), "f85b7287 raftlog 1\n"...), raftpb.Snapshot{Data: []byte("format 4\nepoch 2\npeer 1 c1 http://h/RPC2\n"),
		Metadata: raftpb.SnapshotMetadata{Index: 5, Term: 2, ConfState: raftpb.ConfState{Voters: []uint64{1}}}}))
	f.Add(append(append([]byte(nil), b...), "\n\n\n"...))                                  // padded
	f.Add(append(append([]byte(nil), b[:len(b)-4]...), "\n\n\n\nf85b7287 raftlog 1\n"...)) // torn, then a stale line
	f.Fuzz(func(t *testing.T, data []byte) {
		ld, end, err := parseWAL(data)
		if err != nil {
			return
		}
		if end > len(data) {
			t.Fatalf("end %d past %d bytes", end, len(data))
		}
		next := ld.snap.Metadata.Index + 1
		for _, e := range ld.entries {
			if e.Index != next {
				t.Fatalf("entry %d where %d was due", e.Index, next)
			}
			next++
		}
	})
}
