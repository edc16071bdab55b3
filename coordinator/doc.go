// Package coordinator drives transactions over several keys across every
// participant: presumed-abort two-phase commit with parallel commits, and
// linearizable reads.
//
// The protocol itself is protocol.Machine, one per transaction; this
// package is its driver. It feeds each machine the events of the world
// (votes, failed calls, records made durable, questions, timers) and does
// what each step asks, with one rule, in driver.go: persist what the
// machine asks to persist, then send. The rules about what may be heard
// when (no commit before COMMIT is durable, no abort before ABORT is)
// are the machine's; nothing here depends on the order of statements to
// keep them.
//
// A write transaction (client.go):
//
//	lock its keys, sorted -> log STAGED, and prepare on all, at once
//	-> every YES vote and STAGED durable: reply -> log COMMIT (its fsync
//	shared with the next STAGED) -> commit on all -> log END -> unlock
//
// Each participant runs the transaction on its own copy (compares, then
// the branch's ops) and votes with the results; the votes must agree.
// A transaction that writes in neither branch is read from one
// participant and logs nothing (read.go).
//
// Invariants kept here:
//   - Keys are locked in one global order (sorted), so transactions with
//     overlapping keys never deadlock; a lock is released once the commit
//     has been told everyone once (re-sends go on in the background).
//   - The value cache holds a committed write before its client hears of
//     it, while its keys are still locked (see valueCache).
//   - A committed transaction is forgotten only after every participant
//     of the write set acknowledged it, i.e. after no replica that serves
//     holds it prepared. Reads rely on this (read.go), and so does
//     presumed abort: a transaction this coordinator does not know was
//     never committed.
//   - A participant silent for ExcludeAfter leaves the write set
//     (membership.go): its exclude record is durable before any machine
//     hears of it, and reads and new transactions use only the write
//     set.
//   - An excluded participant rejoins only after catching up
//     (catchup.go): it is fenced against old prepares, copied from a
//     participant in the write set, and included (its include record
//     durable) while no transaction runs, so that every transaction it
//     missed is in its copy and every later one needs its vote.
//   - Members are added and removed only by durable join and remove
//     records (members.go); a removed participant is waited for by no
//     transaction.
//   - Recovery (recovery.go) registers every unfinished record of the log
//     before the coordinator serves, and holds their keys.
//   - Status counters derive from the machines' state changes (count).
//
// Transaction ids are "<epoch>.<seq>": the epoch is logged at every start,
// so ids of different incarnations never collide and recovery can tell a
// transaction of an earlier life (no record: aborted) from one in flight
// now.
//
// The epoch is also the coordinator's term: its peer clients send it
// with every call, and a participant that has heard from a later one
// refuses it (fencing: participant/doc.go). A refusal is a failed call,
// never a vote or an acknowledgement; Config.Deposed hears of the first
// (deposed.go).
//
// The package does no I/O of its own: participants come in through the
// Participant interface (peer.Client over XML-RPC, or a participant.Store
// in tests) and decisions go to a DecisionLog (txlog.Log).
package coordinator
