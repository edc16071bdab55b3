package txlog

import (
	"errors"
	"fmt"
)

// Every error txlog returns wraps one of these (or an os/io error when a
// file cannot be opened or read), so callers can tell them apart with
// errors.Is.
var (
	// ErrCorrupt: the file holds damage that is not a torn tail. The message
	// names the file and the byte offset of the offending line; the file was
	// left as it was.
	ErrCorrupt = errors.New("corrupt log")

	// ErrInvalidRecord: Append or AppendAsync was given a record that cannot
	// be written (bad field, wrong fields for its kind, an epoch not greater
	// than the last one). Nothing was queued; the log is still usable.
	ErrInvalidRecord = errors.New("invalid record")

	// ErrClosed: the log was closed.
	ErrClosed = errors.New("log closed")

	// ErrFailed: a write, fsync or compaction step failed. The log is
	// fail-stop: it writes nothing more and every later call returns the
	// same error, which also wraps the underlying I/O error. Whether records
	// in the failed batch reached the disk is unknown; reopen to find out.
	ErrFailed = errors.New("log failed")
)

func corruptf(path string, off int64, format string, args ...any) error {
	return fmt.Errorf("txlog: %w: %s at offset %d: %s", ErrCorrupt, path, off, fmt.Sprintf(format, args...))
}

func invalid(err error) error {
	return fmt.Errorf("txlog: %w: %v", ErrInvalidRecord, err)
}

func failed(path, op string, err error) error {
	return fmt.Errorf("txlog: %w: %s %s: %w", ErrFailed, op, path, err)
}
