package txlog

import (
	"fmt"
	"github.com/twopc/twopc/protocol"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCompactBytes is the file size above which a log compacts itself
// when Options.CompactBytes is 0.
const DefaultCompactBytes = 4 << 20

// Options tune a Log. The zero value is ready to use.
type Options struct {
	// CompactBytes: after a batch, compact when the log's lines (the
	// file without its padding) take more than this and the live records
	// less than a quarter of it. 0 means
	// DefaultCompactBytes; a negative value turns automatic compaction off.
	CompactBytes int64

	// Linger is how long a record queued with QueueLazy may wait for
	// another record's fsync to share before it gets one of its own
	// (default 1ms).
	Linger time.Duration

	// ObserveFsync, if set, is told how long each fsync of a batch took
	// (metrics). It runs on the writer goroutine: it must be quick.
	ObserveFsync func(time.Duration)

	// SyncInKernel hands the log's fsyncs to the kernel (package fsync),
	// so that the writer waits for one without holding its thread and P:
	// a coordinator with one P then serves votes and clients meanwhile.
	SyncInKernel bool

	// failpoint, set only by tests, is called by the writer at named points
	// ("write", "sync", "compact-sync", "compact-rename"; "linger", each
	// time a batch waits, where its error is ignored); an error it
	// returns is handled as if the I/O at that point had failed.
	failpoint func(point string) error
}

// Stats are counters since Open, and the file size now.
type Stats struct {
	Fsyncs      uint64 // fsync calls: batches, compactions, the directory
	Records     uint64 // records written
	Batches     uint64 // writes, each of every record queued at the time
	Compactions uint64
	Bytes       int64 // length of the log's lines now (the file is longer by its padding)
}

// Log is an open transaction log. Its methods are safe for concurrent use.
//
// Callers only queue records; one writer goroutine (run) does all the file
// I/O, so no caller ever holds a lock across a write or an fsync.
type Log struct {
	path string
	opts Options
	wake chan struct{} // capacity 1: "there is something to do"
	done chan struct{} // closed when the writer has exited

	mu           sync.Mutex
	cur          *batch       // records queued for the next write
	compactCalls []chan error // Compact calls waiting for the writer
	epoch        uint64       // highest epoch queued or written
	lastParts    []string     // the participants of the last record queued that had some (copyParts)
	closed       bool
	err          error // why the log failed; sticky

	lock *os.File // holds the lock file's flock while the log is open

	// Owned by the writer goroutine (and by Close after the writer exited).
	f        *Appender
	live     *live
	unsynced bool // bytes written since the last fsync
	spare    *batch

	fsyncs, records, batches, compactions atomic.Uint64
	size                                  atomic.Int64
}

// batch is a group of records written with one write and, if anyone waits
// for it, made durable with one fsync.
type batch struct {
	buf  []byte
	recs []queued
	sync bool          // some Append waits for durability
	lazy bool          // some QueueLazy waits for durability, not in a hurry
	done chan struct{} // closed when written (and synced, if sync) or failed
	err  error         // valid once done is closed
	// thens are QueueThen's callers, told once done is closed.
	thens []func(error)
}

type queued struct {
	rec protocol.Record
	len int64 // length of its line in buf
}

// newBatch returns an empty batch, reusing the buffers of a written one
// unless they grew too large to keep around.
func newBatch(reuse *batch) *batch {
	b := &batch{done: make(chan struct{})}
	if reuse != nil && cap(reuse.buf) <= 1<<20 {
		clear(reuse.recs) // let the records go
		b.buf, b.recs = reuse.buf[:0], reuse.recs[:0]
	}
	return b
}

// Append writes rec and returns once it is durable (written and fsynced),
// together with every other record queued at the time.
func (l *Log) Append(rec protocol.Record) error {
	return l.Queue(rec)()
}

// Queue queues rec for durability, like Append, and returns at once; the
// returned wait returns once rec is durable (or why it is not). Records
// reach the file in the order they were queued.
func (l *Log) Queue(rec protocol.Record) (wait func() error) {
	return waiter(l.enqueue(rec, eagerSync, nil))
}

// QueueLazy is Queue for a record that is in no hurry: its fsync may wait
// up to Options.Linger for another record's, so that the two share it
// (Flush ends the wait).
func (l *Log) QueueLazy(rec protocol.Record) (wait func() error) {
	return waiter(l.enqueue(rec, lazySync, nil))
}

// QueueThen is Queue (with lazy, QueueLazy) that, instead of returning
// a wait, calls then once rec is durable (nil) or cannot be (why): from
// another goroutine, after QueueThen has returned. The calls for the
// records of one fsync are made one after another from one goroutine,
// so that many waiting records cost no goroutine each.
func (l *Log) QueueThen(rec protocol.Record, lazy bool, then func(error)) {
	mode := eagerSync
	if lazy {
		mode = lazySync
	}
	if _, err := l.enqueue(rec, mode, then); err != nil {
		go then(err)
	}
}

// tell calls b's thens with err, in a goroutine of their own.
func (b *batch) tell(err error) {
	if thens := b.thens; len(thens) > 0 {
		b.thens = nil
		go func() {
			for _, then := range thens {
				then(err)
			}
		}()
	}
}

// waiter waits for b to be durable, or reports why it was not queued.
func waiter(b *batch, err error) func() error {
	if err != nil {
		return func() error { return err }
	}
	return func() error {
		<-b.done
		return b.err
	}
}

// Flush ends the linger of records queued with QueueLazy: they are made
// durable now.
func (l *Log) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur.lazy {
		l.cur.sync = true
		l.signal()
	}
}

// AppendAsync queues rec and returns. It is written with the next batch and
// durable with the next fsync: that of a later Append, Compact or Close.
// The error reports an invalid record or a closed or failed log only.
func (l *Log) AppendAsync(rec protocol.Record) error {
	_, err := l.enqueue(rec, noSync, nil)
	return err
}

// syncMode says whether and how soon a queued record must be durable.
type syncMode int

const (
	noSync    syncMode = iota // AppendAsync
	lazySync                  // QueueLazy
	eagerSync                 // Append, Queue
)

// enqueue queues rec; then, if not nil, is told when its batch is
// durable (QueueThen).
func (l *Log) enqueue(rec protocol.Record, mode syncMode, then func(error)) (*batch, error) {
	if err := check(rec); err != nil {
		return nil, invalid(err)
	}
	// The log keeps rec until it is ended; the caller may reuse its slices.
	rec.Keys = slices.Clone(rec.Keys)

	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return nil, err
	}
	rec.Participants = l.copyParts(rec.Participants)
	b, err := l.enqueueLocked(rec, mode)
	if err == nil && then != nil {
		b.thens = append(b.thens, then)
	}
	return b, err
}

// copyParts returns a copy of parts: the last one it made if they are
// equal, since record after record names the same write set. l.mu is
// held.
func (l *Log) copyParts(parts []string) []string {
	if len(parts) == 0 {
		return slices.Clone(parts)
	}
	if !slices.Equal(parts, l.lastParts) {
		// Clipped: records share it, so no append may write past its end.
		l.lastParts = slices.Clip(slices.Clone(parts))
	}
	return l.lastParts
}

// enqueueLocked queues a valid rec; l.mu is held (or l not yet shared).
func (l *Log) enqueueLocked(rec protocol.Record, mode syncMode) (*batch, error) {
	if rec.Kind == protocol.KindEpoch {
		// Checked here, in queue order, which is file order: the writer
		// must never put a decreasing epoch into the file.
		if rec.Epoch <= l.epoch {
			return nil, invalid(fmt.Errorf("epoch %d is not greater than the current epoch %d", rec.Epoch, l.epoch))
		}
		l.epoch = rec.Epoch
	}
	b := l.cur
	n := len(b.buf)
	b.buf = appendLine(b.buf, rec)
	b.recs = append(b.recs, queued{rec: rec, len: int64(len(b.buf) - n)})
	// Wake the writer only if this record changes what it does with the
	// batch: the first record gives it one to write, the first eager one
	// ends its linger. Waking it for every lazy record only to linger on
	// cost a goroutine switch per transaction.
	if n == 0 || (mode == eagerSync && !b.sync) {
		l.signal()
	}
	b.sync = b.sync || mode == eagerSync
	b.lazy = b.lazy || mode == lazySync
	return b, nil
}

// usable reports why nothing can be queued, or nil. l.mu must be held.
func (l *Log) usable() error {
	if l.err != nil {
		return l.err
	}
	if l.closed {
		return fmt.Errorf("txlog: %w: %s", ErrClosed, l.path)
	}
	return nil
}

func (l *Log) signal() {
	select {
	case l.wake <- struct{}{}:
	default: // the writer has a wake-up pending already
	}
}

// Compact rewrites the log to its live records now, between two batches.
func (l *Log) Compact() error {
	c := make(chan error, 1)
	l.mu.Lock()
	if err := l.usable(); err != nil {
		l.mu.Unlock()
		return err
	}
	l.compactCalls = append(l.compactCalls, c)
	l.signal()
	l.mu.Unlock()
	return <-c
}

// Close writes and fsyncs what is queued, stops the writer and closes the
// file. It returns the error that failed the log, if one did.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("txlog: %w: %s", ErrClosed, l.path)
	}
	l.closed = true
	l.signal()
	l.mu.Unlock()

	<-l.done
	l.mu.Lock()
	err := l.err
	l.mu.Unlock()
	if cerr := l.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("txlog: close %s: %w", l.path, cerr)
	}
	l.lock.Close() // releases the flock
	return err
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	return Stats{
		Fsyncs:      l.fsyncs.Load(),
		Records:     l.records.Load(),
		Batches:     l.batches.Load(),
		Compactions: l.compactions.Load(),
		Bytes:       l.size.Load(),
	}
}
