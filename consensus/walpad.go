package consensus

import (
	"bytes"
	"os"
)

// padChunk is how much padding the raft log file gains at a time. The
// write that needs more padding, and each compaction, writes and syncs
// it on the raft loop, so it stays small: with 4 MiB (and, less often,
// 256 KiB) that stalled the loop long enough for a leader to lose its
// quorum, under -race on a loaded machine, in tests that compact every 8
// entries. At a few hundred bytes to a few KiB per fsync, 64 KiB still
// leaves most fsyncs not changing the file's length. A variable for
// tests.
var padChunk int64 = 64 << 10

// blankBlock is written repeatedly to pad a file: blank lines.
var blankBlock = bytes.Repeat([]byte{'\n'}, 64<<10)

// writeBlank writes n newlines at off.
func writeBlank(f *os.File, off, n int64) error {
	for n > 0 {
		b := blankBlock[:min(n, int64(len(blankBlock)))]
		if _, err := f.WriteAt(b, off); err != nil {
			return err
		}
		off += int64(len(b))
		n -= int64(len(b))
	}
	return nil
}

// reserve makes the padding reach need, adding padChunk past it when it
// does not: writes up to there overwrite blank lines. The padding is
// made durable by the next fsync, with what is written over it.
func (w *wal) reserve(need int64) error {
	if need <= w.room {
		return nil
	}
	n := need - w.room + padChunk
	if err := writeBlank(w.f, w.room, n); err != nil {
		return err
	}
	w.room += n
	return nil
}

// blankTail blanks tail, what the file holds past its last line, if a
// torn write left anything there but padding: a later write shorter
// than it must not be followed by its whole lines, which would then read
// as entries. Then the file is padded, and synced.
func (w *wal) blankTail(tail []byte) error {
	end := w.size.Load()
	if !isBlank(tail) {
		if err := writeBlank(w.f, end, int64(len(tail))); err != nil {
			return err
		}
	}
	if err := w.reserve(end + 1); err != nil {
		return err
	}
	return w.f.Sync()
}

// start writes the header of a new file (or of one that holds no whole
// line) and blanks the rest of old, what the file held.
func (w *wal) start(old []byte) error {
	w.size.Store(0)
	header := w.line(nil, []byte(walHeader))
	if err := w.write(header); err != nil {
		return err
	}
	return w.blankTail(old[min(len(header), len(old)):])
}

func isBlank(b []byte) bool { return len(bytes.TrimLeft(b, "\n")) == 0 }

func firstLine(data []byte) []byte {
	line, _, _ := cutLine(data)
	return line
}
