package txlog

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/twopc/twopc/protocol"
)

// replay applies the lines of data, the content of the file at path (named
// in errors). It returns the state of the valid prefix and that prefix's
// length; the rest is padding or a torn tail (isPadding tells). Damage
// that is not a torn tail is ErrCorrupt. See doc.go for the rules.
func replay(path string, data []byte) (*live, int64, error) {
	s := newLive()
	end, err := EachLine(data, func(_ int, body []byte) error {
		rec, err := parseBody(body)
		if err != nil {
			return err
		}
		return s.apply(rec, int64(headerLen+len(body)+1))
	})
	if le := (*LineError)(nil); errors.As(err, &le) {
		return nil, 0, corruptf(path, int64(le.Off), "%v", le.Err)
	}
	return s, int64(end), err
}

// LineError is damage at byte offset Off of a log that is not a torn
// tail, or the error a line's handler returned for it.
type LineError struct {
	Off int
	Err error
}

func (e *LineError) Error() string { return fmt.Sprintf("offset %d: %v", e.Off, e.Err) }

// EachLine hands f the body of every whole line of data, a file framed
// as this package frames its logs (AppendFramed), in order, and returns
// where the last of them ends: the rest is padding (blank lines), or a
// torn tail, cut by the rules of doc.go. Damage followed by a good line
// before the padding, or an error from f, is a *LineError.
func EachLine(data []byte, f func(off int, body []byte) error) (int, error) {
	off := 0
	for off < len(data) && !PaddingAt(data, off) {
		n := bytes.IndexByte(data[off:], '\n')
		if n < 0 {
			// The last line never got its newline: a torn write, whatever it
			// holds. Appending after it would glue two records together.
			return off, nil
		}
		next := off + n + 1
		body, err := checkFrame(data[off : off+n])
		if err != nil {
			if at := findFramed(data, next); at >= 0 {
				return 0, &LineError{off, fmt.Errorf("%v; a line with a good checksum follows at offset %d", err, at)}
			}
			return off, nil
		}
		if err := f(off, body); err != nil {
			return 0, &LineError{off, err}
		}
		off = next
	}
	return off, nil
}

// tornBytes is the length of the torn tail of data from end, without
// the padding after it.
func tornBytes(data []byte, end int64) int64 {
	tail := data[end:]
	n := len(bytes.TrimRight(tail, "\n"))
	if n < len(tail) {
		n++ // the torn tail's own last newline
	}
	return int64(n)
}

// sector is the unit a disk writes whole, or not at all.
const sector = 512

// PaddingAt says whether the padding (Appender) begins at off, the start
// of a line of data: a blank line, and the rest of its sector blank too.
// A write over padding that a crash tore leaves its lost sectors blank,
// whole; a blank line with anything else in its sector is damage, for
// the rules to judge, not the end of the lines.
func PaddingAt(data []byte, off int) bool {
	end := min(len(data), (off/sector+1)*sector)
	return off < len(data) && isPadding(data[off:end])
}

// findFramed returns the offset of the first line at or after off whose
// framing is good (the last line need not end in a newline), or -1 if
// none comes before the end or the padding.
func findFramed(data []byte, off int) int {
	for off < len(data) && !PaddingAt(data, off) {
		n := bytes.IndexByte(data[off:], '\n')
		end := off + n
		if n < 0 {
			end = len(data)
		}
		if _, err := checkFrame(data[off:end]); err == nil {
			return off
		}
		off = end + 1
	}
	return -1
}

// Scan reads the log at path without modifying it, for operators and tools:
// it applies the same rules as Open but reports a torn tail (with an empty
// CopyPath) instead of cutting it off. It does not look at or remove a
// leftover <path>.compact.tmp.
func Scan(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("txlog: %w", err)
	}
	return ScanBytes(path, data)
}

// ScanBytes is Scan of a copy of a log's content, for tools that fetched
// it from another machine; path names it in errors.
func ScanBytes(path string, data []byte) (*State, error) {
	s, end, err := replay(path, data)
	if err != nil {
		return nil, err
	}
	st := s.state()
	if !isPadding(data[end:]) {
		st.TornTail = &Torn{Offset: end, Bytes: tornBytes(data, end)}
	}
	return st, nil
}

// Replay applies records, as if read from a file in that order, and
// returns the state a log holding them would open with. It does no I/O:
// the protocol explorer uses it to recover exactly as Open does.
func Replay(recs []protocol.Record) (*State, error) {
	s := newLive()
	for i, r := range recs {
		if err := check(r); err != nil {
			return nil, fmt.Errorf("txlog: record %d: %w", i, err)
		}
		if err := s.apply(r, int64(len(appendLine(nil, r)))); err != nil {
			return nil, fmt.Errorf("txlog: record %d: %w", i, err)
		}
	}
	return s.state(), nil
}
