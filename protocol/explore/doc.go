// Package explore checks the coordinator's protocol exhaustively for small
// configurations: every interleaving of votes, failed calls,
// acknowledgements, fsyncs, retries and participants' questions, a
// coordinator crash at every step, with recovery after each crash, and
// the exclusion of a participant from the write set at every step (its
// record queued, then durable, then every machine told), and its return
// (catch-up and include, as one step at any moment no transaction holds
// keys).
//
// It drives the real protocol.Machine, recovers with the real replay
// rules (txlog.Replay), and models the rest as simply as the protocol
// allows: a decision log whose queued records survive a crash only once
// an fsync made them durable; a driver that carries out each Ready as
// its doc says (queue, wait if asked, then send); participants that vote,
// apply and abort as participant.Store does, keeping their prepared
// transactions and what they applied across the coordinator's crashes;
// and a network that may lose any call or its answer, and still deliver
// a call sent before a crash.
//
// Every step is checked against what a user relies on:
//
//   - Rule 1: no participant is told commit before COMMIT is durable.
//   - Rule 2: nobody (client or participant) hears abort before ABORT is
//     durable, and a presumed abort is answered only for a transaction
//     the durable log does not hold.
//   - The client hears success only once every participant holds a YES
//     vote durably and STAGED is durable.
//   - Nobody hears both outcomes of one transaction, so recovery never
//     contradicts an answer already given.
//   - Atomic: no participant applies a transaction another one aborted,
//     or one it never prepared.
//   - Exclusion: the client hears success only once every participant of
//     the transaction holds a YES vote or is durably excluded. An
//     excluded participant is outside the other guarantees (it may hear a
//     presumed abort of what the others committed): it catches up from a
//     snapshot before it serves again.
//   - Rejoining: a participant that caught up holds every transaction
//     committed before (in its copy), never applies one twice, and,
//     behind its fence, takes no prepare sent before it caught up (which
//     would make it hear a presumed abort of what the others committed).
//
// and from every state reached, a fair run (every message delivered, every
// timer fired, every participant asking about what it holds) must end
// with nothing in doubt: no transaction left at the coordinator, nothing
// prepared at any participant, each transaction applied at every
// participant of its write set or at none, and applied exactly when the
// client was told it committed (participants excluded left out).
//
// The checks can fail: TestExplorerFindsPlantedBugs plants bugs in the
// driver (sending before the fsync it was told to wait for, a log that
// reports a record durable without keeping it, recovery that skips
// STAGED records, machines told of an exclusion before it is durable,
// recovery that ignores the log's exclusions, a rejoin without the fence,
// a rejoin while a transaction runs without the participant) and
// requires a violation for each.
package explore
