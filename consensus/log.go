package consensus

import (
	"github.com/twopc/twopc/protocol"
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
	l.n.propose(l.term, rec, then)
}

// Queue proposes rec and returns a wait for its commit.
func (l *Log) Queue(rec protocol.Record) (wait func() error) {
	ch := make(chan error, 1)
	l.n.propose(l.term, rec, func(err error) { ch <- err })
	var err error
	done := false
	return func() error {
		if !done {
			err, done = <-ch, true
		}
		return err
	}
}

// QueueLazy is Queue: raft batches whatever is queued when it proposes.
func (l *Log) QueueLazy(rec protocol.Record) (wait func() error) { return l.Queue(rec) }

// Append proposes rec and waits for its commit.
func (l *Log) Append(rec protocol.Record) error { return l.Queue(rec)() }

// Flush does nothing: proposals do not linger.
func (l *Log) Flush() {}

// AppendAsync proposes rec without waiting (an END, whose loss only
// means commits are sent again).
func (l *Log) AppendAsync(rec protocol.Record) error {
	l.n.propose(l.term, rec, nil)
	return nil
}
