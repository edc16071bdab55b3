// Package participant is one replica of the data: a SQLite database that
// votes on, then applies or discards, the writes a coordinator proposes.
//
// A participant keeps two tables in one SQLite file (WAL, synchronous=FULL):
// kv, the committed data, and prepared, the writes it has promised to apply.
//
// Invariants:
//   - A YES vote is sent only after the prepared row is durable, so a
//     participant killed after voting still holds its promise on restart.
//   - While a transaction is prepared, its key is locked: a second prepare on
//     the same key gets a NO vote (conflict), never a wait, so no deadlock.
//   - Commit and abort are idempotent; an abort for a transaction the
//     participant never saw leaves a tombstone, and a prepare that arrives
//     after it is refused (the coordinator has already given up on it).
//   - Prepared rows are resolved without an operator: after a restart, or
//     when a decision is late, the participant asks the coordinator for the
//     outcome (presumed abort: a transaction it never decided is aborted).
//
// Every write-set change goes through one writer goroutine that batches all
// requests waiting at that moment into one SQLite transaction: one fsync
// serves many prepares and commits (group commit). Reads run concurrently on
// separate connections and see a consistent snapshot of kv and prepared.
package participant
