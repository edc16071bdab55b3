// Package consensus replicates the coordinator's decision log over several
// coordinators with etcd raft (go.etcd.io/raft/v3): it elects one leader
// and makes a record durable once a majority of coordinators hold it.
//
// Why etcd raft rather than hashicorp/raft: etcd raft is a pure state
// machine, as this project's own protocol is (protocol.Machine): the
// caller owns the clock (ticks), the disk and the network. So the log
// stays one text file in txlog's framing, written with one fsync per
// Ready (group commit for free), raft messages travel over the
// coordinators' own HTTP server with the peer token and TLS, and tests
// drive real nodes in one process. hashicorp/raft runs its own
// goroutines, timers and TCP transport (msgpack, no token), and wants
// a random-access LogStore and a StableStore beside it, which would
// either leave the text format or re-implement a store over it.
//
// Layers, bottom-up:
//
//   - wal.go: raft's entries, hard state and snapshots in one text file,
//     framed as a txlog is (checksummed lines; less and grep read it),
//     padded past the last line with blank lines (walpad.go) so that an
//     fsync need not change the file's length.
//     Entries carry txlog record bodies; a snapshot is the records a
//     compacted txlog would hold (txlog.Tracker).
//   - node.go, loop.go: one goroutine owns the RawNode. Each Ready is
//     persisted, then sent (a leader sends while it writes, raft
//     thesis 10.2.1), then applied to a txlog.Tracker; proposals go in
//     between Readies, so each one's index is known and its waiter is
//     told when that index is committed in the same term (else
//     ErrNotLeader: another leader's entry replaced it, or this node
//     stopped leading).
//   - transport.go: messages to a peer go in order, batched, over one
//     connection: a POST /raft that upgrades it (101 Switching
//     Protocols), then length-prefixed protobufs; a failed or stalled
//     write drops the batch, reports the peer to raft, which retries,
//     and the next batch opens a new stream. A stream says who sends and
//     where it serves, so that a coordinator that missed a membership
//     change (down, or restarted without knowing it committed) can
//     answer a leader it has never heard of; peers.go keeps those apart
//     from the members.
//   - read.go: ConfirmLeader, raft's ReadIndex, so that a leader answers
//     a read only once a majority confirmed it still leads; concurrent
//     calls share a round.
//   - log.go: the decision log of one term (coordinator.DecisionLog).
//
// Invariants kept here:
//   - A leader serves only once its epoch record is applied: the epoch
//     is its raft term, so transaction ids of different leaders never
//     collide, and the state it recovers from holds every record
//     committed before it (Role.State).
//   - Epochs increase along the log: each leader proposes one epoch
//     record, with its own term, once per term.
//   - A node's vote and the entries it acknowledges are durable before
//     it says so; a leader's own entries count only after its fsync.
//   - ConfirmLeader succeeds only on heartbeats of its term answered by
//     a majority after the call began (ReadOnlySafe, never a lease: a
//     paused leader's clock says nothing).
//
// Timing (defaults): ticks of 20 ms, heartbeats every 2 ticks, elections
// after 10 to 20 ticks without a leader, PreVote and CheckQuorum on (a
// leader cut off from the majority steps down within 2 election timeouts).
package consensus
