// Package coordinator makes a single-key write atomic across every
// participant with presumed-abort two-phase commit, and serves
// linearizable reads.
//
// A write is one transaction (parallel commits):
//
//	lock key -> log STAGED (fsync), and prepare on all, at the same time
//	-> reply -> log COMMIT (fsync, shared with the next STAGED)
//	-> commit on all -> log END (no fsync) -> unlock key
//
// A transaction is committed once every participant holds a durable YES
// vote and its STAGED record is durable: nothing else needs to be written
// before the client hears success. Any NO vote, error or timeout during
// prepare aborts it. Invariants:
//
//   - Atomic: a transaction commits only after every participant durably
//     voted YES, and once committed every participant is told to commit
//     until it acknowledges (re-sent in the background if needed).
//   - Durable: the client hears "true" only once the votes and STAGED are
//     durable, which is enough for recovery to commit it (recovery.go).
//   - Commit is told only after COMMIT is durable: a participant that
//     applied a commit forgets it held the transaction prepared, and
//     recovery must not mistake that for a missing vote.
//   - Abort is heard only after ABORT is durable (or when no STAGED can
//     exist): otherwise recovery, finding every vote and STAGED, would
//     commit what someone was told was aborted. A participant asking about
//     a transaction still being prepared makes the coordinator decide
//     abort on the spot (txn.decideFrom is where decisions are taken), so
//     the answer can never be contradicted.
//   - Presumed abort: a transaction with no record in the log was aborted.
//   - A committed transaction is forgotten only after every participant
//     acknowledged it, i.e. after no replica holds it prepared. Reads rely
//     on this (see read.go).
//   - No global lock on the commit path: writes to different keys proceed
//     in parallel; writes to one key queue on that key's lock, with a bound.
//
// Transaction ids are "<epoch>.<seq>": the epoch is logged at every start,
// so ids of different incarnations never collide and recovery can tell a
// transaction of an earlier life (no record: aborted) from one in flight
// now.
//
// The package does no I/O of its own: participants come in through the
// Participant interface (XML-RPC client, or a Store in tests) and decisions
// go to a DecisionLog (txlog.Log).
package coordinator
