package txlog

import (
	"cmp"
	"errors"
	"fmt"
	"github.com/twopc/twopc/protocol"
	"slices"
)

// State is what a log holds for recovery.
type State struct {
	Epoch    uint64            // highest epoch in the log, 0 for a new log
	Pending  []protocol.Record // staged and commit records without an outcome, in log order
	Excluded []string          // participants excluded from the write set, sorted
	TornTail *Torn             // non-nil when a torn tail was found (and, by Open, cut)
}

// Torn describes a torn tail.
type Torn struct {
	Offset   int64  // where the tail started; the file now ends here (Open)
	Bytes    int64  // how many bytes it held
	CopyPath string // copy of the whole file before the cut; "" from Scan
}

// live is the replay state machine: what the log still has to remember. It
// does no I/O. Open feeds it the file, the writer feeds it every batch it
// writes, and compaction writes it out, so it always describes the file.
type live struct {
	format   uint64 // of the records read so far; 0 until a format line (format 1)
	epoch    uint64
	epochLen int64 // length of the epoch line, 0 while there is none
	seq      uint64
	pending  map[string]liveCommit
	excluded map[string]int64 // participant -> length of its exclude line
	bytes    int64            // length of the lines compaction would write, format line included
}

type liveCommit struct {
	seq uint64 // log order
	rec protocol.Record
	len int64 // line length
}

// formatLineLen is the length of the format line compaction writes.
var formatLineLen = int64(len(appendLine(nil, protocol.Record{Kind: protocol.KindFormat, Format: Format})))

func newLive() *live {
	return &live{pending: make(map[string]liveCommit), excluded: make(map[string]int64), bytes: formatLineLen}
}

// apply takes a valid record whose line is n bytes long. The only error is
// an epoch that does not increase; the caller decides what that means
// (corruption on replay, an invalid record on append).
func (s *live) apply(r protocol.Record, n int64) error {
	switch r.Kind {
	case protocol.KindFormat:
		if r.Format > Format {
			return fmt.Errorf("format %d: written by a newer twopc (this one reads formats 1 to %d)", r.Format, Format)
		}
		if r.Format < s.format {
			return fmt.Errorf("format %d after format %d", r.Format, s.format)
		}
		s.format = r.Format
	case protocol.KindEpoch:
		if r.Epoch == 0 {
			return errors.New("epoch 0: epochs start at 1")
		}
		if r.Epoch <= s.epoch {
			return fmt.Errorf("epoch %d is not greater than the previous epoch %d", r.Epoch, s.epoch)
		}
		s.bytes += n - s.epochLen
		s.epoch, s.epochLen = r.Epoch, n
	case protocol.KindStaged, protocol.KindCommit:
		c, ok := s.pending[r.TxID]
		switch {
		case ok && c.rec.Kind == protocol.KindStaged && r.Kind == protocol.KindCommit:
			// The decision replaces the intent, keeping its position.
			s.bytes += n - c.len
			s.pending[r.TxID] = liveCommit{seq: c.seq, rec: r, len: n}
		case ok:
			return nil // a duplicate, or a staged after the commit: the first stays
		default:
			s.seq++
			s.pending[r.TxID] = liveCommit{seq: s.seq, rec: r, len: n}
			s.bytes += n
		}
	case protocol.KindAbort, protocol.KindEnd:
		if c, ok := s.pending[r.TxID]; ok {
			delete(s.pending, r.TxID)
			s.bytes -= c.len
		}
	case protocol.KindExclude:
		if _, ok := s.excluded[r.Participants[0]]; !ok { // a repeat changes nothing
			s.excluded[r.Participants[0]] = n
			s.bytes += n
		}
	}
	return nil
}

// commits returns the pending staged and commit records in log order.
func (s *live) commits() []protocol.Record {
	cs := make([]liveCommit, 0, len(s.pending))
	for _, c := range s.pending {
		cs = append(cs, c)
	}
	slices.SortFunc(cs, func(a, b liveCommit) int { return cmp.Compare(a.seq, b.seq) })
	recs := make([]protocol.Record, len(cs))
	for i, c := range cs {
		recs[i] = c.rec
	}
	return recs
}

// records returns what a compacted log holds: the format, the epoch,
// the exclusions (sorted), then the pending records in log order.
// Exclusions come before the transactions because recovery reads them
// first either way (State.Excluded applies to every pending record).
func (s *live) records() []protocol.Record {
	recs := []protocol.Record{{Kind: protocol.KindFormat, Format: Format}}
	if s.epoch > 0 {
		recs = append(recs, protocol.Record{Kind: protocol.KindEpoch, Epoch: s.epoch})
	}
	for _, p := range s.excludedNames() {
		recs = append(recs, protocol.Record{Kind: protocol.KindExclude, Participants: []string{p}})
	}
	return append(recs, s.commits()...)
}

func (s *live) excludedNames() []string {
	names := make([]string, 0, len(s.excluded))
	for p := range s.excluded {
		names = append(names, p)
	}
	slices.Sort(names)
	return names
}

// state returns a State that shares nothing with s.
func (s *live) state() *State {
	pending := s.commits()
	for i := range pending {
		pending[i].Participants = slices.Clone(pending[i].Participants)
		pending[i].Keys = slices.Clone(pending[i].Keys)
	}
	return &State{Epoch: s.epoch, Pending: pending, Excluded: s.excludedNames()}
}
