package txlog

import (
	"bytes"
	"os"

	"github.com/twopc/twopc/internal/fsync"
)

// PadBytes is how much blank padding an Appender adds past its end at a
// time. An fsync after an append that grows the file must also commit
// the file system's journal (the new length, the new blocks); one after
// a write over padding need not for that (an mtime change still may),
// and costs about a third less CPU and time on ext4 (measured here: 125
// against 80 µs of CPU, 250 against 165 µs of wall time per fsync). The
// padding is written, so it stays small: the write that needs more pays
// for it (a raft loop that wrote 4 MiB at a time stalled long enough to
// lose its quorum under -race). A variable for tests.
var PadBytes int64 = 64 << 10

// blankBlock is written repeatedly to pad a file: blank lines.
var blankBlock = bytes.Repeat([]byte{'\n'}, 64<<10)

// Appender writes a log file at its end, over the blank lines that pad
// the file past it: the log's lines end where the padding begins
// (PaddingAt, doc.go), and the file stays text that less and grep read. An Appender is not
// safe for concurrent use.
type Appender struct {
	f    *os.File
	sync *fsync.File // nil: f.Sync
	end  int64       // where the next line goes
	room int64       // the file's length: end plus the padding after it
}

// NewAppender appends to f (opened read-write, without O_APPEND) at end,
// where its last whole line ends. What follows end must be blank: the
// caller cuts or blanks a torn tail first (BlankTail).
func NewAppender(f *os.File, end int64) (*Appender, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return &Appender{f: f, end: end, room: max(fi.Size(), end)}, nil
}

// Write writes p at the end and, if p went past the padding, pads the
// file past p again. The padding is made durable with p, by the next
// Sync, so that the next batch writes over durable padding: a sector of
// that write lost in a crash reads as padding (see PaddingAt). After an
// error the Appender must not be used: the file may end in part of p.
func (a *Appender) Write(p []byte) (int, error) {
	n, err := a.f.WriteAt(p, a.end)
	a.end += int64(n)
	if err != nil || a.end <= a.room {
		return n, err
	}
	a.room = a.end // at least; more once the padding is written
	if err := a.blank(a.end, PadBytes); err != nil {
		return n, err
	}
	a.room = a.end + PadBytes
	return n, nil
}

// BlankTail overwrites everything past the end with blank lines: what a
// torn write left there must not be read as lines once a shorter write
// is followed by them.
func (a *Appender) BlankTail() error { return a.blank(a.end, a.room-a.end) }

// blank writes n newlines at off.
func (a *Appender) blank(off, n int64) error {
	for n > 0 {
		b := blankBlock[:min(n, int64(len(blankBlock)))]
		if _, err := a.f.WriteAt(b, off); err != nil {
			return err
		}
		off += int64(len(b))
		n -= int64(len(b))
	}
	return nil
}

// Sync makes everything written durable.
func (a *Appender) Sync() error {
	if a.sync != nil {
		return a.sync.Sync()
	}
	return a.f.Sync()
}

// SyncInKernel makes Sync hand its fsyncs to the kernel (package fsync),
// so that the goroutine waiting for one does not hold its thread and P.
func (a *Appender) SyncInKernel() { a.sync = fsync.New(a.f) }

// End is where the next write goes: the length of the log's lines.
func (a *Appender) End() int64 { return a.end }

// Name is the file's name.
func (a *Appender) Name() string { return a.f.Name() }

// Close closes the file; the padding stays, blank lines to the end.
func (a *Appender) Close() error {
	if a.sync != nil {
		a.sync.Close()
	}
	return a.f.Close()
}

// isPadding says whether tail, what follows a log's last line, is
// padding only (or nothing).
func isPadding(tail []byte) bool { return len(bytes.TrimLeft(tail, "\n")) == 0 }
