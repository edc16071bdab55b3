// Package protocol is the vocabulary of twopc's transactions and the
// coordinator's per-transaction state machine, with no I/O, no clock and
// no goroutines, so that every interleaving and every crash point can be
// explored (see explore/).
//
// Vocabulary: a transaction (Txn) has compares and a success and a
// failure branch of ops; Evaluate runs it on a snapshot of its keys, as
// each participant does when it prepares, and gives an Outcome (which
// branch ran, each op's result, the keys' new entries with their
// versions). Participants vote (Vote) YES, NO or read-only; the
// coordinator logs Records of the kinds in record.go.
//
// The machine runs presumed-abort two-phase commit with parallel commits:
//
//	Start: log STAGED (no wait) and send prepare to every participant
//	every vote YES and STAGED durable: committed; reply to the client,
//	    log COMMIT (its fsync may linger), then send commit to all
//	any NO, failure, or a participant's question: log ABORT, wait, then
//	    tell everyone abort
//	every commit acknowledged: log END (no wait), forget
//
// A participant excluded from the write set (EvExcluded, once its
// exclude record is durable) is no longer waited for: the machine
// commits on the votes of the others and finishes without its
// acknowledgement.
//
// A driver (the coordinator) feeds it events (votes, failed calls, records
// made durable, questions, acknowledgements, timers) and carries out each
// Ready it returns: queue the records, wait for them if asked, then send.
// The rules on what may be heard when live in one function,
// Machine.ready; legal state changes are listed once, in legalMoves.
//
// Invariants the explorer checks over every interleaving:
//   - Atomic: no participant applies a transaction another one aborted
//     (among those not excluded).
//   - The client hears success only once every participant holds a YES
//     vote or is durably excluded.
//   - No participant hears commit before COMMIT is durable; nobody hears
//     abort before ABORT is durable.
//   - Recovery never contradicts an answer already given, and finishes
//     every transaction once every process runs again.
package protocol
