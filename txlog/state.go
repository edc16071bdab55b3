package txlog

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/twopc/twopc/protocol"
)

// State is what a log holds for recovery.
type State struct {
	Epoch    uint64            // highest epoch in the log, 0 for a new log
	Pending  []protocol.Record // staged and commit records without an outcome, in log order
	Excluded []string          // participants excluded from the write set, sorted
	Joined   []Joined          // participants added by a join record, by name
	Removed  []string          // participants taken out for good, sorted
	TornTail *Torn             // non-nil when a torn tail was found (and, by Open, cut)
}

// Joined is a participant a join record added, and where it is served.
type Joined struct{ Name, URL string }

// Torn describes a torn tail.
type Torn struct {
	Offset   int64  // where the tail started; the file now ends here (Open)
	Bytes    int64  // how many bytes it held, padding after it aside
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
	// members is what membership records said of each participant they
	// name; memberBytes is the length of the lines that say it again.
	members     map[string]*membership
	memberBytes int64
	bytes       int64 // length of the other lines compaction would write, format line included
}

// membership is one participant's standing, from the records naming it.
type membership struct {
	url      string // of its join; "" for one configured by flags
	excluded bool
	removed  bool
}

// lines returns the records that restore m (name p) on replay, in order.
func (m *membership) lines(p string) []protocol.Record {
	one := func(k protocol.Kind) protocol.Record { return protocol.Record{Kind: k, Participants: []string{p}} }
	switch {
	case m.removed:
		return []protocol.Record{one(protocol.KindRemove)}
	case m.url != "":
		join := one(protocol.KindJoin)
		join.URL = m.url
		if m.excluded {
			return []protocol.Record{join}
		}
		return []protocol.Record{join, one(protocol.KindInclude)}
	case m.excluded:
		return []protocol.Record{one(protocol.KindExclude)}
	}
	return nil // a configured participant in the write set: nothing to say
}

type liveCommit struct {
	seq uint64 // log order
	rec protocol.Record
	len int64 // line length
}

// formatLineLen is the length of the format line compaction writes.
var formatLineLen = int64(len(appendLine(nil, protocol.Record{Kind: protocol.KindFormat, Format: Format})))

func newLive() *live {
	return &live{pending: make(map[string]liveCommit), members: make(map[string]*membership), bytes: formatLineLen}
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
	case protocol.KindExclude, protocol.KindInclude, protocol.KindJoin, protocol.KindRemove:
		s.applyMembership(r)
	}
	return nil
}

// applyMembership: join adds a participant, excluded until it catches
// up; remove takes one out for good (a later join brings it back);
// exclude and include move it out of and into the write set. A record
// about a removed participant other than join changes nothing.
func (s *live) applyMembership(r protocol.Record) {
	p := r.Participants[0]
	m := s.members[p]
	if m == nil {
		m = &membership{}
		s.members[p] = m
	}
	switch {
	case r.Kind == protocol.KindJoin:
		*m = membership{url: r.URL, excluded: true}
	case m.removed:
	case r.Kind == protocol.KindRemove:
		*m = membership{removed: true}
	case r.Kind == protocol.KindExclude:
		m.excluded = true
	case r.Kind == protocol.KindInclude:
		m.excluded = false
	}
	if !m.removed && !m.excluded && m.url == "" {
		delete(s.members, p) // as if never named
	}
	s.memberBytes = 0
	for _, r := range s.membershipRecords() {
		s.memberBytes += int64(len(appendLine(nil, r)))
	}
}

// membershipRecords returns the lines that restore every participant's
// standing, by name.
func (s *live) membershipRecords() []protocol.Record {
	var recs []protocol.Record
	for _, p := range slices.Sorted(maps.Keys(s.members)) {
		recs = append(recs, s.members[p].lines(p)...)
	}
	return recs
}

// size is the length of the file compaction would write.
func (s *live) size() int64 { return s.bytes + s.memberBytes }

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
// the membership records (by participant), then the pending records in
// log order. Membership comes before the transactions because recovery
// reads it first either way (State.Excluded applies to every pending
// record).
func (s *live) records() []protocol.Record {
	recs := []protocol.Record{{Kind: protocol.KindFormat, Format: Format}}
	if s.epoch > 0 {
		recs = append(recs, protocol.Record{Kind: protocol.KindEpoch, Epoch: s.epoch})
	}
	recs = append(recs, s.membershipRecords()...)
	return append(recs, s.commits()...)
}

// state returns a State that shares nothing with s.
func (s *live) state() *State {
	pending := s.commits()
	for i := range pending {
		pending[i].Participants = slices.Clone(pending[i].Participants)
		pending[i].Keys = slices.Clone(pending[i].Keys)
	}
	st := &State{Epoch: s.epoch, Pending: pending}
	for _, p := range slices.Sorted(maps.Keys(s.members)) {
		m := s.members[p]
		switch {
		case m.removed:
			st.Removed = append(st.Removed, p)
			continue
		case m.url != "":
			st.Joined = append(st.Joined, Joined{Name: p, URL: m.url})
		}
		if m.excluded {
			st.Excluded = append(st.Excluded, p)
		}
	}
	return st
}
