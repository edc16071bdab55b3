package consensus

import (
	"fmt"
	"os"

	"github.com/twopc/twopc/txlog"
	"go.etcd.io/raft/v3/raftpb"
)

// DefaultSnapshotEntries is Config.SnapshotEntries's default: a log
// holds about that many entries past its snapshot at most.
const DefaultSnapshotEntries = 10_000

// Scanned is what a raft log file holds, for operators and tools.
type Scanned struct {
	// State is what the log's committed records say, as far as this
	// copy knows them to be committed.
	State *txlog.State
	// All is what every entry of this copy says, those not known
	// committed here included. A change of the commit index alone is not
	// written to disk (it is learnt again from the leader), so on a
	// group at rest the last entries of even the leader's copy are
	// committed without this copy saying so: there, All is the state.
	All *txlog.State
	// Term and Commit are raft's; Entries are kept past the snapshot,
	// Uncommitted of them not known committed here; Last is the index
	// of the last one.
	Term, Commit, Last   uint64
	Entries, Uncommitted int
	Torn                 bool // a torn last write (blanked at the next start)
	// Bytes is where the last whole line ends: the file's length less
	// its padding.
	Bytes int
}

// IsRaftLog says whether the file at path is a raft log (rather than a
// single coordinator's txlog).
func IsRaftLog(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 64)
	n, _ := f.Read(b)
	return IsRaftLogBytes(b[:n])
}

// IsRaftLogBytes says whether data, the start of a log file or all of
// it, is a raft log's.
func IsRaftLogBytes(data []byte) bool {
	line, _, _ := cutLine(data)
	body, err := txlog.Unframe(line)
	return err == nil && isWALHeader(body)
}

func cutLine(b []byte) ([]byte, []byte, bool) {
	for i, c := range b {
		if c == '\n' {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}

// Scan reads the raft log at path without changing it.
func Scan(path string) (*Scanned, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ScanBytes(path, data)
}

// ScanBytes reads a copy of a raft log (fetched from a coordinator's
// host, say); path names it in errors.
func ScanBytes(path string, data []byte) (*Scanned, error) {
	ld, end, err := parseWAL(data)
	if err != nil {
		return nil, fmt.Errorf("raft log %s: %w", path, err)
	}
	t := txlog.NewTracker()
	if ld.snap.Metadata.Index > 0 {
		recs, _, _, err := parseSnapshotData(ld.snap.Data)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if err := t.Apply(r); err != nil {
				return nil, err
			}
		}
	}
	sc := &Scanned{Term: ld.hard.Term, Commit: ld.hard.Commit, Last: ld.snap.Metadata.Index, Entries: len(ld.entries), Torn: !isBlank(data[end:]), Bytes: end}
	for _, e := range ld.entries {
		sc.Last = e.Index
		if e.Index > ld.hard.Commit {
			if sc.Uncommitted == 0 {
				sc.State = t.State()
			}
			sc.Uncommitted++
		}
		if e.Type != raftpb.EntryNormal || len(e.Data) == 0 {
			continue
		}
		r, err := txlog.ParseRecord(e.Data)
		if err != nil {
			return nil, err
		}
		if err := t.Apply(r); err != nil {
			return nil, fmt.Errorf("raft log %s: entry %d: %w", path, e.Index, err)
		}
	}
	sc.All = t.State()
	if sc.State == nil {
		sc.State = sc.All
	}
	return sc, nil
}

// ScanLeaderBytes reads the copy of the coordinator that leads, and
// counts every entry in it as committed (its State is All): a leader
// never drops an entry of its log (raft's Leader Append-Only), so each
// one is committed once it commits one of its own term, which it has
// done before it serves (its epoch record).
func ScanLeaderBytes(path string, data []byte) (*Scanned, error) {
	sc, err := ScanBytes(path, data)
	if err != nil {
		return nil, err
	}
	sc.State = sc.All
	return sc, nil
}
