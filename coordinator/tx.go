package coordinator

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twopc/twopc/protocol"
)

// tx is one transaction as the driver holds it: the protocol machine,
// stepped under mu, and the people waiting on it.
type tx struct {
	c   *Coordinator
	id  string
	txn *protocol.Txn // nil for a transaction recovered from the log

	mu      sync.Mutex
	m       *protocol.Machine
	reply   chan protocol.Reply // the client's answer; buffered
	askers  []chan answer       // questions waiting for the outcome
	unlock  func()              // releases the keys, once
	final   *answer             // once finished: the answer to late questions
	retries atomic.Int32        // retry rounds so far, for the backoff
	settled chan struct{}       // closed once the outcome is durable (or unknown)
	// logged are the records queued for it (by this life, or recovered
	// from the log), for operators (Transactions); loggedBuf holds the
	// usual few without another allocation.
	logged    []protocol.Record
	loggedBuf [3]protocol.Record

	started, decided time.Time // for the phase observer
}

type answer struct {
	commit bool
	err    error
}

func newTx(c *Coordinator, id string, txn *protocol.Txn, unlock func()) *tx {
	t := &tx{c: c, id: id, txn: txn, reply: make(chan protocol.Reply, 1), unlock: unlock,
		settled: make(chan struct{}), started: time.Now()}
	t.logged = t.loggedBuf[:0]
	return t
}

// step feeds ev to the machine and carries out what it asks. Records are
// queued while mu is held, so that the log holds them in step order.
func (t *tx) step(ev protocol.Event) {
	t.mu.Lock()
	rd := t.m.Step(ev)
	waits := t.c.queue(t, rd)
	t.mu.Unlock()
	t.c.carryOut(t, rd, waits)
}

// ask registers a question about the outcome and waits for its answer.
func (t *tx) ask(ctx context.Context) (bool, error) {
	ch := make(chan answer, 1)
	t.mu.Lock()
	if t.final != nil { // finished meanwhile
		t.mu.Unlock()
		return t.final.commit, t.final.err
	}
	t.askers = append(t.askers, ch)
	t.mu.Unlock()
	t.step(protocol.Event{Kind: protocol.EvAsked})
	select {
	case a := <-ch:
		return a.commit, a.err
	case <-ctx.Done():
		return false, fmt.Errorf("coordinator: outcome of %s not durable yet: %w", t.id, ctx.Err())
	}
}

// answer tells everyone waiting. With last, it is also the answer to
// every question still to come (the transaction is finished).
func (t *tx) answer(a answer, last bool) {
	t.mu.Lock()
	askers := t.askers
	t.askers = nil
	if last {
		t.final = &a
	}
	t.mu.Unlock()
	for _, ch := range askers {
		ch <- a
	}
}

// state is the machine's state now.
func (t *tx) state() protocol.State {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m.State()
}

// wait waits until the outcome is durable (or unknown), within ctx.
func (t *tx) wait(ctx context.Context) error {
	select {
	case <-t.settled:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
