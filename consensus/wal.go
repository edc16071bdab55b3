package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/twopc/twopc/protocol"
	"github.com/twopc/twopc/txlog"
	"go.etcd.io/raft/v3/raftpb"
)

// wal keeps raft's log, its hard state and its snapshots in one text file
// framed as a txlog is (txlog.AppendFramed): one checksummed line each,
// readable with less and grep. The bodies are
//
//	raftlog 1                           the first line: this format
//	hard <term> <vote> <commit>         raft's HardState (vote: a node id)
//	entry <index> <term> <data>         a log entry
//	state <record>                      a record of a snapshot's state
//	snapshot <index> <term> <voters>    the state lines just before it are
//	                                    the state after entry index
//
// where <data> is "-" for an empty entry (a new leader's first), a txlog
// record ("staged 3.17 p1,p2,p3 \"k\"") or "conf <add|remove> <node>"
// (a membership change of the coordinators), node ids in hex, voters
// comma-separated. An entry at or below the last index replaces it and
// every entry after it: raft truncates a conflicting suffix, and an
// append-only file says so by writing the new entry.
//
// Past its last line the file is padded with blank lines, as a txlog
// is (txlog.Appender), so that an append overwrites padding and its
// fsync need not change the file's length.
type wal struct {
	path string
	a    *txlog.Appender
	buf  []byte
	size atomic.Int64 // where the last line ends (a.End, for other goroutines)
	// Counters for Stats, read by other goroutines.
	fsyncs, records, batches, compactions atomic.Uint64
}

// loaded is what a wal file holds.
type loaded struct {
	hard    raftpb.HardState
	snap    raftpb.Snapshot
	entries []raftpb.Entry
}

// The first line. Format 2 is format 1 with padding; a file of format 1
// is rewritten in format 2 when opened, so that an older twopc refuses
// it at its first line rather than at the padding.
const (
	walHeader   = "raftlog 2"
	walHeaderV1 = "raftlog 1"
)

func isWALHeader(body []byte) bool {
	return string(body) == walHeader || string(body) == walHeaderV1
}

// openWAL reads the file at path (creating it), and blanks a torn last
// write and whatever it left past the last whole line.
func openWAL(path string) (*wal, *loaded, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	ld, end, err := parseWAL(data)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("raft log %s: %w", path, err)
	}
	a, err := txlog.NewAppender(f, int64(end))
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("raft log %s: %w", path, err)
	}
	w := &wal{path: path, a: a}
	w.size.Store(int64(end))
	switch {
	case end == 0:
		// A new file (or one without a whole line) is there after a crash
		// only once its directory entry is durable.
		if err = w.start(data); err == nil {
			err = txlog.SyncDir(path)
		}
	case !bytes.HasSuffix(firstLine(data), []byte(walHeader)):
		err = w.rewrite(ld.hard, ld.snap, ld.entries)
	default:
		// Nothing past end was ever acknowledged: a torn last write.
		err = w.blankTail(data[end:])
	}
	if err != nil {
		w.a.Close()
		return nil, nil, fmt.Errorf("raft log %s: %w", path, err)
	}
	return w, ld, nil
}

// parseWAL returns what data holds and where its last whole line ends:
// where the padding begins (txlog.PaddingAt), or at a torn last write. A
// damaged line is torn only if nothing but padding or the end of the
// file follows it; damage before that is refused, never skipped.
func parseWAL(data []byte) (*loaded, int, error) {
	ld := &loaded{}
	var state []byte // state lines since the last snapshot line
	off := 0
	for off < len(data) && !txlog.PaddingAt(data, off) {
		nl := bytes.IndexByte(data[off:], '\n')
		if nl < 0 {
			return ld, off, nil // torn: no newline
		}
		line := data[off : off+nl]
		body, err := txlog.Unframe(line)
		if err != nil {
			if next := off + nl + 1; next == len(data) || txlog.PaddingAt(data, next) {
				return ld, off, nil // torn last line
			}
			return nil, 0, fmt.Errorf("offset %d: %v", off, err)
		}
		if off == 0 && !isWALHeader(body) {
			return nil, 0, fmt.Errorf("first line %q is not %q", body, walHeader)
		}
		if err := ld.apply(body, &state); err != nil {
			return nil, 0, fmt.Errorf("offset %d: %v", off, err)
		}
		off += nl + 1
	}
	return ld, off, nil
}

func (ld *loaded) apply(body []byte, state *[]byte) error {
	kind, rest, _ := strings.Cut(string(body), " ")
	switch kind {
	case "raftlog":
		return nil
	case "hard":
		f := strings.Fields(rest)
		if len(f) != 3 {
			return fmt.Errorf("hard %q: want term, vote and commit", rest)
		}
		var hs raftpb.HardState
		var err1, err2, err3 error
		hs.Term, err1 = strconv.ParseUint(f[0], 10, 64)
		hs.Vote, err2 = strconv.ParseUint(f[1], 16, 64)
		hs.Commit, err3 = strconv.ParseUint(f[2], 10, 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			return err
		}
		ld.hard = hs
	case "entry":
		e, err := parseEntry(rest)
		if err != nil {
			return err
		}
		first := ld.snap.Metadata.Index + 1
		if len(ld.entries) > 0 {
			first = ld.entries[0].Index
		}
		switch {
		case e.Index <= ld.snap.Metadata.Index:
			return fmt.Errorf("entry %d is inside the snapshot (up to %d)", e.Index, ld.snap.Metadata.Index)
		case e.Index > first+uint64(len(ld.entries)):
			return fmt.Errorf("entry %d leaves a gap after %d", e.Index, first+uint64(len(ld.entries))-1)
		}
		ld.entries = append(ld.entries[:e.Index-first], e)
	case "state":
		if _, _, _, err := parseSnapshotData([]byte(rest)); err != nil {
			return err
		}
		*state = append(append(*state, rest...), '\n')
	case "snapshot":
		md, err := parseSnapshotLine(rest)
		if err != nil {
			return err
		}
		ld.snap = raftpb.Snapshot{Metadata: md, Data: *state}
		*state = nil
		// Entries the snapshot covers are gone; later ones stay if they
		// follow it.
		var keep []raftpb.Entry
		for _, e := range ld.entries {
			if e.Index > md.Index {
				keep = append(keep, e)
			}
		}
		if len(keep) > 0 && keep[0].Index != md.Index+1 {
			keep = nil
		}
		ld.entries = keep
	default:
		return fmt.Errorf("unknown line kind %q", kind)
	}
	return nil
}

func parseEntry(s string) (raftpb.Entry, error) {
	f := strings.SplitN(s, " ", 3)
	if len(f) != 3 {
		return raftpb.Entry{}, fmt.Errorf("entry %q: want index, term and data", s)
	}
	idx, err1 := strconv.ParseUint(f[0], 10, 64)
	term, err2 := strconv.ParseUint(f[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return raftpb.Entry{}, err
	}
	e := raftpb.Entry{Index: idx, Term: term, Type: raftpb.EntryNormal}
	data := f[2]
	switch {
	case data == "-":
	case strings.HasPrefix(data, "conf "):
		cc, err := parseConf(data[len("conf "):])
		if err != nil {
			return raftpb.Entry{}, err
		}
		e.Type = raftpb.EntryConfChange
		e.Data, err = cc.Marshal()
		if err != nil {
			return raftpb.Entry{}, err
		}
	default:
		if _, err := txlog.ParseRecord([]byte(data)); err != nil {
			return raftpb.Entry{}, err
		}
		e.Data = []byte(data)
	}
	return e, nil
}

func parseConf(s string) (raftpb.ConfChange, error) {
	op, rest, _ := strings.Cut(s, " ")
	node, context, _ := strings.Cut(rest, " ")
	id, err := strconv.ParseUint(node, 16, 64)
	if err != nil {
		return raftpb.ConfChange{}, fmt.Errorf("conf %q: node: %v", s, err)
	}
	cc := raftpb.ConfChange{NodeID: id}
	if context != "" {
		if _, _, ok := parseConfContext([]byte(context)); !ok {
			return raftpb.ConfChange{}, fmt.Errorf("conf %q: want <name> <url> after the node", s)
		}
		cc.Context = []byte(context)
	}
	switch op {
	case "add":
		cc.Type = raftpb.ConfChangeAddNode
	case "remove":
		cc.Type = raftpb.ConfChangeRemoveNode
	default:
		return raftpb.ConfChange{}, fmt.Errorf("conf %q: unknown change %q", s, op)
	}
	return cc, nil
}

func parseSnapshotLine(s string) (raftpb.SnapshotMetadata, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return raftpb.SnapshotMetadata{}, fmt.Errorf("snapshot %q: want index, term and voters", s)
	}
	idx, err1 := strconv.ParseUint(f[0], 10, 64)
	term, err2 := strconv.ParseUint(f[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return raftpb.SnapshotMetadata{}, err
	}
	md := raftpb.SnapshotMetadata{Index: idx, Term: term}
	for _, v := range strings.Split(f[2], ",") {
		id, err := strconv.ParseUint(v, 16, 64)
		if err != nil {
			return raftpb.SnapshotMetadata{}, fmt.Errorf("snapshot voter %q: %v", v, err)
		}
		md.ConfState.Voters = append(md.ConfState.Voters, id)
	}
	return md, nil
}

// line appends one framed line to dst.
func (w *wal) line(dst, body []byte) []byte { return txlog.AppendFramed(dst, body) }

// appendEntry appends e's line.
func appendEntry(dst []byte, e raftpb.Entry) ([]byte, error) {
	body := fmt.Appendf(nil, "entry %d %d ", e.Index, e.Term)
	switch {
	case e.Type == raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			return nil, err
		}
		op := "add"
		switch cc.Type {
		case raftpb.ConfChangeAddNode:
		case raftpb.ConfChangeRemoveNode:
			op = "remove"
		default:
			return nil, fmt.Errorf("conf change %v is not supported", cc.Type)
		}
		body = fmt.Appendf(body, "conf %s %x", op, cc.NodeID)
		if len(cc.Context) > 0 {
			body = append(append(body, ' '), cc.Context...)
		}
	case e.Type != raftpb.EntryNormal:
		return nil, fmt.Errorf("entry type %v is not supported", e.Type)
	case len(e.Data) == 0:
		body = append(body, '-')
	default:
		body = append(body, e.Data...)
	}
	return txlog.AppendFramed(dst, body), nil
}

// appendSnapshot appends a snapshot's state lines and its snapshot line.
func appendSnapshot(dst []byte, s raftpb.Snapshot) []byte {
	for _, rec := range bytes.Split(bytes.TrimSuffix(s.Data, []byte{'\n'}), []byte{'\n'}) {
		if len(rec) > 0 {
			dst = txlog.AppendFramed(dst, append([]byte("state "), rec...))
		}
	}
	voters := make([]string, len(s.Metadata.ConfState.Voters))
	for i, v := range s.Metadata.ConfState.Voters {
		voters[i] = strconv.FormatUint(v, 16)
	}
	return txlog.AppendFramed(dst, fmt.Appendf(nil, "snapshot %d %d %s", s.Metadata.Index, s.Metadata.Term, strings.Join(voters, ",")))
}

func appendHard(dst []byte, hs raftpb.HardState) []byte {
	return txlog.AppendFramed(dst, fmt.Appendf(nil, "hard %d %x %d", hs.Term, hs.Vote, hs.Commit))
}

// save makes a Ready's snapshot, entries and hard state durable, in that
// order, with one write and one fsync.
func (w *wal) save(snap raftpb.Snapshot, ents []raftpb.Entry, hs *raftpb.HardState) error {
	b := w.buf[:0]
	if snap.Metadata.Index > 0 {
		b = appendSnapshot(b, snap)
	}
	for _, e := range ents {
		var err error
		if b, err = appendEntry(b, e); err != nil {
			return err
		}
	}
	if hs != nil {
		b = appendHard(b, *hs)
	}
	w.buf = b
	if len(b) == 0 {
		return nil
	}
	if err := w.write(b); err != nil {
		return err
	}
	w.fsyncs.Add(1)
	w.batches.Add(1)
	w.records.Add(uint64(len(ents)))
	return w.a.Sync()
}

// write puts b after the last line, over padding.
func (w *wal) write(b []byte) error {
	_, err := w.a.Write(b)
	w.size.Store(w.a.End())
	return err
}

// rewrite replaces the file with one holding only hs, snap and ents (the
// entries after it), made durable before the rename.
func (w *wal) rewrite(hs raftpb.HardState, snap raftpb.Snapshot, ents []raftpb.Entry) error {
	b := txlog.AppendFramed(nil, []byte(walHeader))
	if snap.Metadata.Index > 0 {
		b = appendSnapshot(b, snap)
	}
	for _, e := range ents {
		var err error
		if b, err = appendEntry(b, e); err != nil {
			return err
		}
	}
	b = appendHard(b, hs)
	tmp := w.path + ".compact.tmp"
	file, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	f, err := txlog.NewAppender(file, 0)
	if err == nil {
		_, err = f.Write(b)
	}
	if err != nil {
		file.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := os.Rename(tmp, w.path); err != nil {
		f.Close()
		return err
	}
	w.a.Close()
	w.a = f
	w.size.Store(int64(len(b)))
	w.compactions.Add(1)
	w.fsyncs.Add(2)
	return txlog.SyncDir(w.path) // the rename is durable once its directory is
}

func (w *wal) close() error { return w.a.Close() }

func (w *wal) sizeNow() int64 { return w.size.Load() }

// snapshotData encodes records as a snapshot's data: one record body a
// line (the peers follow: peers.appendSnapshot).
func snapshotData(recs []protocol.Record) []byte {
	var b []byte
	for _, r := range recs {
		b = append(txlog.AppendRecord(b, r), '\n')
	}
	return b
}

// parseSnapshotData decodes a snapshot's data: its records, the peers
// and the names removed for good.
func parseSnapshotData(data []byte) (recs []protocol.Record, ps []Peer, removed []string, err error) {
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte{'\n'}), []byte{'\n'}) {
		switch {
		case len(line) == 0:
		case bytes.HasPrefix(line, []byte("peer ")):
			f := strings.Fields(string(line))
			if len(f) != 4 {
				return nil, nil, nil, fmt.Errorf("snapshot line %q: want peer <id> <name> <url>", line)
			}
			id, err := strconv.ParseUint(f[1], 16, 64)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("snapshot line %q: %v", line, err)
			}
			ps = append(ps, Peer{ID: id, Name: f[2], URL: f[3]})
		case bytes.HasPrefix(line, []byte("removed-peer ")):
			removed = append(removed, string(line[len("removed-peer "):]))
		default:
			r, err := txlog.ParseRecord(line)
			if err != nil {
				return nil, nil, nil, err
			}
			recs = append(recs, r)
		}
	}
	return recs, ps, removed, nil
}
