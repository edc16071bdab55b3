package consensus

import (
	"context"

	"github.com/twopc/twopc/protocol"
	"github.com/twopc/twopc/txlog"
)

// Log is the decision log of the coordinator incarnation that serves in
// one term (coordinator.DecisionLog): a record is durable once raft has
// committed it, i.e. a majority of the coordinators hold it on disk.
// Once the term is over every call fails with ErrNotLeader: the
// coordinator then treats its transactions' outcomes as unknown and
// stops, and the next leader recovers them from its copy of the log.
type Log struct {
	n    *Node
	term uint64
}

// Log returns the decision log for term, the one Role.Term said serves.
func (n *Node) Log(term uint64) *Log { return &Log{n: n, term: term} }

// QueueThen proposes rec; then hears once it is committed, or why not,
// from another goroutine.
func (l *Log) QueueThen(rec protocol.Record, lazy bool, then func(error)) {
	l.n.propose(l.term, rec, lazy, then)
}

// Queue proposes rec and returns a wait for its commit.
func (l *Log) Queue(rec protocol.Record) (wait func() error) { return l.queue(rec, false) }

func (l *Log) queue(rec protocol.Record, lazy bool) (wait func() error) {
	ch := make(chan error, 1)
	l.n.propose(l.term, rec, lazy, func(err error) { ch <- err })
	var err error
	done := false
	return func() error {
		if !done {
			err, done = <-ch, true
		}
		return err
	}
}

// QueueLazy is Queue for a record that may wait up to Linger for
// another to share its round (a COMMIT, whose client already has its
// answer): every coordinator then writes both with one fsync.
func (l *Log) QueueLazy(rec protocol.Record) (wait func() error) { return l.queue(rec, true) }

// Append proposes rec and waits for its commit.
func (l *Log) Append(rec protocol.Record) error { return l.Queue(rec)() }

// Stats are this coordinator's raft log counters (status shows them):
// fsyncs, entries written, writes, compactions, and the file's size.
func (l *Log) Stats() txlog.Stats {
	w := l.n.wal
	return txlog.Stats{Fsyncs: w.fsyncs.Load(), Records: w.records.Load(), Batches: w.batches.Load(),
		Compactions: w.compactions.Load(), Bytes: w.sizeNow()}
}

// Flush proposes what lingers now.
func (l *Log) Flush() { l.n.signalFlush() }

// AppendAsync proposes rec without waiting (an END, whose loss only
// means commits are sent again).
func (l *Log) AppendAsync(rec protocol.Record) error {
	l.n.propose(l.term, rec, true, nil)
	return nil
}

// ConfirmLeader returns nil once a majority confirmed, after the call
// began, that this coordinator still leads in the log's term
// (Node.ConfirmLeader): a read may then answer.
func (l *Log) ConfirmLeader(ctx context.Context) error { return l.n.ConfirmLeader(ctx, l.term) }
