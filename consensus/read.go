package consensus

import (
	"context"
	"encoding/binary"

	"go.etcd.io/raft/v3"
)

// ConfirmLeader returns nil once this node has heard, from a majority
// answering a round of heartbeats sent after the call began, that it
// still leads in term (raft's ReadIndex, thesis 6.4). Then no other
// leader can have committed anything before the call: a read that
// follows sees every write acknowledged before it began. Without it, a
// leader cut off from the others could answer reads from participants
// the next leader excluded without reaching them, stale, until it steps
// down.
//
// Calls that arrive while a round is out share the next one. It fails
// with ErrNotLeader if this node does not serve in term, or stops
// leading first, and with ctx's error if no majority answers in time.
func (n *Node) ConfirmLeader(ctx context.Context, term uint64) error {
	ch := make(chan error, 1)
	n.mu.Lock()
	if n.serving != term {
		n.mu.Unlock()
		return ErrNotLeader
	}
	n.readsQueued = append(n.readsQueued, ch)
	n.mu.Unlock()
	n.signal()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrNotLeader
	}
}

// readRound is one ReadIndex request and the calls it answers.
type readRound struct {
	seq   uint64
	calls []chan error
}

// askReadIndex starts a round for calls (the loop's). A round raft lost
// (a heartbeat or its answer dropped) is covered by the next: raft
// answers a request only after every earlier one, so an answer to seq
// answers every round up to it. A tick with rounds out starts one for
// that reason, with no calls of its own.
func (n *Node) askReadIndex(calls []chan error) {
	if !n.leader {
		for _, ch := range calls {
			ch <- ErrNotLeader
		}
		return
	}
	n.readSeq++
	n.readRounds = append(n.readRounds, readRound{seq: n.readSeq, calls: calls})
	n.rn.ReadIndex(binary.BigEndian.AppendUint64(nil, n.readSeq))
}

// readsAnswered settles the rounds raft confirmed (the loop's).
func (n *Node) readsAnswered(states []raft.ReadState) {
	for _, rs := range states {
		if len(rs.RequestCtx) != 8 {
			continue
		}
		seq := binary.BigEndian.Uint64(rs.RequestCtx)
		for len(n.readRounds) > 0 && n.readRounds[0].seq <= seq {
			for _, ch := range n.readRounds[0].calls {
				ch <- nil
			}
			n.readRounds = n.readRounds[1:]
		}
	}
}

// failReads: this node stopped leading, or leaves (the loop's).
func (n *Node) failReads() {
	for _, r := range n.readRounds {
		for _, ch := range r.calls {
			ch <- ErrNotLeader
		}
	}
	n.readRounds = nil
}
