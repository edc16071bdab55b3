package rpc

import (
	"bytes"
	"io"
	"math"
	"sync"
)

// This file holds the fast path's state and how it gets the body: read
// whole, because the scanner works on bytes in memory, but in a way that
// lets the slow path see exactly the stream it would have read itself.

// scanner is the fast path's state for one document. Scanners are pooled:
// the body buffer and the scratch stacks are what a busy server would
// otherwise allocate again for every request.
type scanner struct {
	lim  Limits
	b    []byte // the whole body
	i    int    // read position in b
	text []byte // decoded text, when it differs from the raw bytes
	vals []any  // array elements and params being collected, innermost last
	mems []member
	// interned remembers short strings already boxed: batch replies repeat
	// "yes", "no" and op names hundreds of times.
	interned [16]internEntry
	nextSlot int
}

type member struct {
	name string
	v    any
}

type internEntry struct {
	s    string
	v    any // s, boxed once (nil until str wants it)
	used bool
}

// Buffers above these sizes are not kept in the pool, so that one huge
// request does not pin its memory for the life of the process.
const (
	maxPooledBody = 1 << 20
	maxPooledText = 64 << 10
	maxPooledVals = 4096
)

var scanners = sync.Pool{New: func() any { return new(scanner) }}

func getScanner(lim Limits) *scanner {
	s := scanners.Get().(*scanner)
	s.lim = lim
	return s
}

func putScanner(s *scanner) {
	if cap(s.b) > maxPooledBody {
		s.b = nil
	}
	if cap(s.text) > maxPooledText {
		s.text = nil
	}
	// A failed fast path leaves values on the stacks; drop them, so that
	// the pool does not keep them alive.
	clear(s.vals)
	clear(s.mems)
	if cap(s.vals) > maxPooledVals {
		s.vals = nil
	}
	if cap(s.mems) > maxPooledVals {
		s.mems = nil
	}
	s.b, s.i, s.text = s.b[:0], 0, s.text[:0]
	s.vals, s.mems = s.vals[:0], s.mems[:0]
	scanners.Put(s)
}

// read reads all of r into s.b. It returns nil if r ended within
// maxBytes. Otherwise (r is longer, or failed) it returns a reader that
// replays what was read and then continues as r did, so that the slow
// path, reading it, meets the same bytes, the same limit and the same
// error at the same place as if it had read r itself. A known length
// (0: unknown) sizes the buffer at once, rather than by doubling, which
// copies and clears twice the body.
func (s *scanner) read(r io.Reader, maxBytes, length int64) io.Reader {
	limit := maxBytes // read one byte past the limit to tell "at" from "over"
	if limit < math.MaxInt64 {
		limit++
	}
	if length > 0 && length < limit && int64(cap(s.b)) <= length {
		s.b = make([]byte, 0, length+1) // +1: room to meet the end
	}
	b := s.b[:0]
	for int64(len(b)) < limit {
		if len(b) == cap(b) {
			grow := min(int64(max(cap(b), 4096)), limit-int64(len(b)))
			b = append(b, make([]byte, grow)...)[:len(b)]
		}
		room := b[len(b):cap(b)]
		if left := limit - int64(len(b)); int64(len(room)) > left {
			room = room[:left]
		}
		n, err := r.Read(room)
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			s.b = b
			return io.MultiReader(bytes.NewReader(b), errReader{err})
		}
	}
	s.b = b
	if int64(len(b)) > maxBytes {
		return io.MultiReader(bytes.NewReader(b), r)
	}
	return nil
}

// errReader fails with err, as the body did after the bytes read before.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
