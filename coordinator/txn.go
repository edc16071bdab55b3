package coordinator

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twopc/twopc/participant"
)

// txState is where a transaction is in the protocol. The legal moves are
// the ones in legalMoves; decide refuses every other.
//
// A transaction commits when every participant holds a durable YES vote
// and its STAGED record is durable (parallel commits: the two are written
// at the same time). Nobody has to be told for that to be true, which is
// why every abort is logged before anyone hears of it: otherwise recovery,
// finding every vote and the STAGED record, would commit a transaction a
// client or participant was told was aborted.
type txState int

const (
	// statePreparing: STAGED and the prepares are out. A participant
	// asking about the transaction now gets abort (and so does the client).
	statePreparing txState = iota
	// stateCommitting: committed (every vote YES, STAGED durable) and the
	// client may have heard so; the COMMIT record, which must precede any
	// commit message, is being written. Reads see the new value; a
	// participant asking waits for the record.
	stateCommitting
	// stateCommitted: COMMIT is durable; participants are told to commit
	// until they acknowledge.
	stateCommitted
	// stateAborted: final. Its ABORT record may still be on its way to
	// disk: settled says when it is there.
	stateAborted
	// stateResolving: a STAGED transaction of an earlier life, without an
	// outcome in the log. Recovery asks the participants which one it had
	// (see Coordinator.resolve); meanwhile readers and participants wait.
	stateResolving
)

var stateNames = [...]string{"preparing", "committing", "committed", "aborted", "resolving"}

func (s txState) String() string { return stateNames[s] }

var legalMoves = map[txState][]txState{
	statePreparing:  {stateCommitting, stateAborted},
	stateCommitting: {stateCommitted},
	stateResolving:  {stateCommitting, stateAborted},
}

// txn is one single-key transaction.
type txn struct {
	id    string
	write participant.Write
	since time.Time // when this coordinator took it on (for operators)

	mu      sync.Mutex
	state   txState
	settled chan struct{} // closed once COMMIT or ABORT is durable
	logErr  error         // why that record could not be written; read after settled
}

func newTxn(id string, w participant.Write) *txn {
	return &txn{id: id, write: w, since: time.Now(), settled: make(chan struct{})}
}

// newRecovered rebuilds a transaction that recovery found in the log in
// state (stateCommitted or stateResolving).
func newRecovered(id string, key string, state txState) *txn {
	t := &txn{id: id, write: participant.Write{Key: key}, state: state, since: time.Now(), settled: make(chan struct{})}
	if state == stateCommitted {
		close(t.settled)
	}
	return t
}

// decide moves t to state to, if that move is legal from where t is now.
// It reports whether it did; a false means someone else decided first.
func (t *txn) decide(to txState) bool {
	return t.decideFrom(t.current(), to)
}

// decideFrom moves t from state from to state to, if t is in from and the
// move is legal.
func (t *txn) decideFrom(from, to txState) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state != from {
		return false
	}
	for _, ok := range legalMoves[from] {
		if ok == to {
			t.state = to
			return true
		}
	}
	return false
}

// settle records that t's final record is durable (err nil) or could not
// be written, and wakes everyone waiting for it.
func (t *txn) settle(err error) {
	t.logErr = err
	close(t.settled)
}

func (t *txn) current() txState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state
}

// wait returns t's durable outcome, waiting for it within ctx.
func (t *txn) wait(ctx context.Context) (commit bool, err error) {
	select {
	case <-t.settled:
	case <-ctx.Done():
		return false, fmt.Errorf("coordinator: outcome of %s not settled yet: %w", t.id, ctx.Err())
	}
	if t.logErr != nil {
		return false, t.logErr
	}
	return t.current() == stateCommitted, nil
}

func txID(epoch, seq uint64) string {
	return strconv.FormatUint(epoch, 10) + "." + strconv.FormatUint(seq, 10)
}

// txEpoch returns the epoch a transaction id was issued in, or 0 if the id
// is not one of ours.
func txEpoch(id string) uint64 {
	e, _, ok := strings.Cut(id, ".")
	if !ok {
		return 0
	}
	n, err := strconv.ParseUint(e, 10, 64)
	if err != nil {
		return 0
	}
	return n
}
