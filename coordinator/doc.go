// Package coordinator makes a single-key write atomic across every
// participant with presumed-abort two-phase commit, and serves
// linearizable reads.
//
// A write is one transaction:
//
//	lock key (coordinator) -> prepare on all -> log COMMIT (fsync) -> reply
//	-> commit on all -> log END (no fsync) -> unlock key
//
// Any NO vote, error or timeout during prepare aborts the transaction on
// every participant; aborts are never logged. Invariants:
//
//   - Atomic: a transaction commits only after every participant durably
//     voted YES, and once COMMIT is durable every participant is told to
//     commit until it acknowledges (re-sent in the background if needed).
//   - Durable: the client hears "true" only after COMMIT is fsynced.
//   - Presumed abort: a transaction with no COMMIT record is aborted. A
//     participant asking about a transaction still being prepared makes the
//     coordinator decide abort on the spot (txn.decide is the one place a
//     decision is taken), so the answer can never be contradicted.
//   - A committed transaction is forgotten only after every participant
//     acknowledged it, i.e. after no replica holds it prepared. Reads rely
//     on this (see read.go).
//   - No global lock on the commit path: writes to different keys proceed
//     in parallel; writes to one key queue on that key's lock, with a bound.
//
// Transaction ids are "<epoch>.<seq>": the epoch is logged at every start,
// so ids of different incarnations never collide and recovery can tell a
// transaction of an earlier life (no COMMIT record: aborted) from one in
// flight now.
//
// The package does no I/O of its own: participants come in through the
// Participant interface (XML-RPC client, or a Store in tests) and decisions
// go to a DecisionLog (txlog.Log).
package coordinator
