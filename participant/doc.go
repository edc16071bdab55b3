// Package participant is one replica of the data: a SQLite database that
// runs the transactions a coordinator proposes on its own copy, votes,
// then applies or discards their writes.
//
// A participant keeps the committed data, kv, with each key's version, in
// one SQLite file (WAL, synchronous=FULL), and its votes in a vote log
// next to it (votelog.go): an append-only file of prepares (the entry
// each key of a prepared transaction will have), commits and aborts,
// which a batch makes durable with one write and one fsync. Committed
// writes wait in memory and reach kv together about once a second
// (apply.go), so that a page of kv is written once for many commits; the
// vote log holds them until then, and is replaced by a snapshot of what
// is still needed once it has grown.
//
// Invariants:
//   - A YES vote is sent only after the prepared writes are durable, so a
//     participant killed after voting still holds its promise on restart.
//   - A transaction runs (protocol.Evaluate) on the committed data of its
//     keys while no other prepared transaction holds any of them: a
//     prepare that finds one locked gets a NO vote (conflict), never a
//     wait, so no deadlock. Replicas holding the same data vote the same
//     branch and results; the coordinator compares them.
//   - A transaction whose branch writes nothing votes read-only and
//     keeps nothing: no lock, no row, no fsync.
//   - Commit and abort are idempotent; an abort for a transaction the
//     participant never saw leaves a tombstone, and a prepare that arrives
//     after it is refused (the coordinator has already given up on it).
//   - Prepared transactions are resolved without an operator: after a
//     restart, or when a decision is late, the participant asks the
//     coordinator for the outcome (presumed abort: a transaction it never
//     decided is aborted).
//   - Fencing: every request a coordinator sends carries its term (the
//     epoch it logged at start; with several coordinators, the leader's
//     term: see protocol.WithTerm). The highest term seen is kept in
//     meta, made durable before anything a request of a higher term
//     causes is answered; a request of a lower term is refused whole
//     (protocol.StaleTermError), and counted. So a coordinator that was
//     paused or cut off while another took over can never get a
//     prepare, commit, abort or install accepted here once this
//     participant has heard from the newer one. Requests without a term
//     (operators' reads, the resolver) are not fenced; the server
//     (package peer) refuses changes without one.
//
// Every write goes through one writer goroutine that batches all requests
// waiting at that moment: one fsync of the vote log serves many prepares
// and commits (group commit). Committed writes go into kv by steps, each
// a SQLite transaction on a connection of its own beside the writer
// (applier.go), so that no prepare waits for one. The writer keeps the kv
// entries it reads and writes in a bounded cache (kvcache.go), all of kv
// while it fits, so that a prepare seldom queries SQLite. Reads run concurrently on
// separate connections: each sees kv and the writes held in memory (the
// view: committed and not yet in kv, and prepared) as of one moment.
// How the coordinator reaches a Store over the network is package
// peer's business, not this one's.
package participant
