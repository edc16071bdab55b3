package coordinator

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/twopc/twopc/participant"
)

// txState is where a transaction is in the protocol. The legal moves are
// the ones in legalMoves; decide refuses every other.
type txState int

const (
	// statePreparing: prepares are out, no decision yet. A participant
	// asking about the transaction now gets abort (and so does the client).
	statePreparing txState = iota
	// stateCommitting: every vote was YES and the COMMIT record is being
	// written. Not yet durable: readers still see the old value, and a
	// participant asking must wait for the record.
	stateCommitting
	// stateCommitted: COMMIT is durable; the outcome can no longer change.
	// Participants that have not acknowledged are told until they do.
	stateCommitted
	// stateAborted: final. Nothing is logged (presumed abort).
	stateAborted
)

var stateNames = [...]string{"preparing", "committing", "committed", "aborted"}

func (s txState) String() string { return stateNames[s] }

var legalMoves = map[txState][]txState{
	statePreparing:  {stateCommitting, stateAborted},
	stateCommitting: {stateCommitted},
}

// txn is one single-key transaction.
type txn struct {
	id    string
	write participant.Write

	mu      sync.Mutex
	state   txState
	durable chan struct{} // closed on entering stateCommitted
}

func newTxn(id string, w participant.Write) *txn {
	return &txn{id: id, write: w, durable: make(chan struct{})}
}

// newCommitted rebuilds a transaction whose COMMIT record recovery found.
func newCommitted(id string, key string) *txn {
	t := &txn{id: id, write: participant.Write{Key: key}, state: stateCommitted, durable: make(chan struct{})}
	close(t.durable)
	return t
}

// decide moves t to state to, if that move is legal from where t is now.
// It reports whether it did; a false means someone else decided first.
func (t *txn) decide(to txState) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ok := range legalMoves[t.state] {
		if ok == to {
			t.state = to
			if to == stateCommitted {
				close(t.durable)
			}
			return true
		}
	}
	return false
}

func (t *txn) current() txState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state
}

// outcome answers a participant: decide abort if nothing is decided yet,
// wait for the COMMIT record if it is being written.
func (t *txn) outcome(ctx context.Context) (commit bool, err error) {
	if t.decide(stateAborted) {
		return false, nil
	}
	switch t.current() {
	case stateAborted:
		return false, nil
	case stateCommitted:
		return true, nil
	}
	select {
	case <-t.durable:
		return true, nil
	case <-ctx.Done():
		return false, fmt.Errorf("coordinator: outcome of %s: %w", t.id, ctx.Err())
	}
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
