package txlog

import (
	"os"

	"github.com/twopc/twopc/protocol"
)

// The pieces below let a replicated log (package consensus) keep its own
// file in this format: the same framing, the same record bodies, the same
// replay rules, so that less, grep and twopc txlog read it too.

// LockFile takes the lock Open takes on a log, an exclusive flock of
// path+".lock" that the kernel drops when the process dies, for another
// file that one process at a time may write (a participant's database
// and vote log). Closing the file releases it; an error wraps ErrLocked
// if another process holds it.
func LockFile(path string) (*os.File, error) {
	f, _, err := lockFile(path)
	return f, err
}

// SyncDir fsyncs the directory holding path, as the log does for a new
// file: for another file kept the same way (a participant's vote log).
func SyncDir(path string) error { return syncDir(path) }

// AppendFramed appends "<crc> <body>\n" to dst. body must hold no newline.
func AppendFramed(dst, body []byte) []byte {
	start := len(dst)
	dst = append(dst, "00000000 "...)
	dst = append(dst, body...)
	putCRC(dst[start:], dst[start+headerLen:])
	return append(dst, '\n')
}

// Unframe checks a line's checksum (line without its newline) and returns
// its body. An error means a torn or damaged line.
func Unframe(line []byte) ([]byte, error) { return checkFrame(line) }

// AppendRecord appends the body of r's line (no checksum, no newline).
// r must be valid (see CheckRecord).
func AppendRecord(dst []byte, r protocol.Record) []byte { return appendBody(dst, r) }

// ParseRecord decodes a record body; it accepts only the canonical
// encoding of a valid record.
func ParseRecord(body []byte) (protocol.Record, error) { return parseBody(body) }

// CheckRecord says whether r can be written.
func CheckRecord(r protocol.Record) error { return check(r) }

// Tracker is the replay state machine on its own: fed records in log
// order, it knows what a log holding them must remember. A replicated log
// feeds it the records it applies, and writes Records out as a snapshot.
type Tracker struct{ s *live }

// NewTracker returns the state of an empty log.
func NewTracker() *Tracker { return &Tracker{s: newLive()} }

// Apply takes the next record. An error (an invalid record, an epoch that
// does not increase) leaves the state unchanged.
func (t *Tracker) Apply(r protocol.Record) error {
	if err := check(r); err != nil {
		return err
	}
	return t.s.apply(r, int64(len(appendLine(nil, r))))
}

// State is what a log holding the records so far opens with.
func (t *Tracker) State() *State { return t.s.state() }

// Records are the fewest records that give the same state, format line
// first: what a compacted log holds.
func (t *Tracker) Records() []protocol.Record { return t.s.records() }
