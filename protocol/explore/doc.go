// Package explore checks the coordinator's protocol exhaustively for small
// configurations: every interleaving of votes, failed calls,
// acknowledgements, fsyncs, retries and participants' questions, a
// coordinator crash at every step, with recovery after each crash, the
// exclusion of a participant from the write set at every step (its
// record queued, then durable, then every machine told), its return
// (catch-up and include, as one step at any moment no transaction holds
// keys), and a handover of the leadership to another coordinator at
// every step.
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
// # Several coordinators
//
// One coordinator leads; raft replicates its log, and "durable" means
// committed by raft (fsync stands for that). Raft itself is not
// modeled, only what it guarantees: a handover elects another
// coordinator at any moment, whose log holds every committed record and
// any prefix of the records the leader queued but had not seen
// committed (raft may have replicated them to a majority without the
// leader learning it): the explorer branches over every prefix length.
// The new leader commits that prefix with the first record of its term
// before it reads its log, so all of it is durable; then it recovers as
// a restarted coordinator does (txlog.Replay, protocol.Recover, asking
// the participants), with the next epoch as its term. Transaction ids
// carry the epoch, and every call to a participant carries its sender's
// term.
//
// The deposed leader is not crashed: it runs on, and does not know yet.
// It starts transactions, sends what its machines ask for, answers
// questions, and its calls, earlier or new, may arrive at any later
// moment. None of its records becomes durable from the handover on, so
// its machines never hear EvDurable again. At any moment (first thing in
// a fair run) it learns it lost: every machine is stepped with
// EvLogFailed, as the driver does when its log fails, so a client
// still waiting hears "outcome unknown" (never "aborted"; a client may
// still have heard success after the handover, from the last vote of a
// transaction whose STAGED was committed before it: that is safe, see
// below); then it stops, and answers to its calls are dropped. A crash
// of a deposed leader is that same step as the checks see it; a crash of
// the leader is a handover whose deposed leader stops at once.
//
// Participants keep the highest term they have seen in a call (a
// catch-up's calls carry the leader's term too) and refuse a call of a
// lower one; the sender takes a refusal for a failed call. They ask
// either leader about what they hold prepared. A deposed leader asked
// about a transaction of a later epoch does not answer (it cannot know
// it); of its own or an earlier one, it answers as a single coordinator
// does (presumed abort if unknown): everything it forgot, it forgot on
// records every later leader holds.
//
// Why the term check is needed: the machine replies success once every
// vote is YES and STAGED is durable, with no record after the handover.
// Without the check, a deposed leader's prepare can arrive late at a
// participant that already told the new leader it does not hold the
// transaction (so the new leader aborts it), and the YES vote it then
// gives lets the deposed leader tell its client success. With the check
// that participant, having seen the new term, refuses the prepare. A
// late commit or abort from the deposed leader breaks nothing even
// without the check: it sends them only once COMMIT or ABORT is
// committed, and every later leader holds that record.
//
// Not modeled: raft's election and replication (one step; a new leader
// that dies before committing its first record never acted, which is a
// handover with a different prefix); the deposed leader's own exclusions
// and catch-ups (their records never become durable, so its machines
// never hear of them, and a catch-up's calls would be refused by term);
// a follower forwarding questions (a question goes to one coordinator,
// and is asked again if that one is gone); reads.
//
// # What is checked
//
// Every step is checked against what a user relies on:
//
//   - Rule 1: no participant is told commit before COMMIT is durable.
//   - Rule 2: nobody (client or participant) hears abort before ABORT is
//     durable, and a presumed abort is answered only for a transaction
//     the answering coordinator's log does not hold.
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
//   - Fencing: no participant takes a call of a term lower than one it
//     has seen.
//
// "Durable" is always the leader's committed log, which every later
// leader's holds. From every state reached, a fair run (the deposed
// leaders learn they lost, every message delivered, every timer fired,
// every participant asking the leader about what it holds) must end
// with nothing in doubt: no transaction left at the leader or
// unfinished in its log, nothing prepared at any participant, each
// transaction applied at every participant of its write set or at
// none, and applied exactly when the client was told it committed
// (participants excluded left out).
//
// The checks can fail: TestExplorerFindsPlantedBugs plants bugs in the
// driver (sending before the fsync it was told to wait for, a log that
// reports a record durable without keeping it, recovery that skips
// STAGED records, machines told of an exclusion before it is durable,
// recovery that ignores the log's exclusions, a rejoin without the fence,
// a rejoin while a transaction runs without the participant,
// participants without the term check, a new leader that recovers only
// the records the old one saw committed, a deposed leader that tells a
// waiting client "aborted", a deposed leader that presumes abort for a
// later leader's transaction) and requires a violation for each.
//
// The new leader that recovers only what the old one saw committed is
// found by the rules alone: it presumes abort for a transaction its log
// holds STAGED, and leaves it unfinished there until the next handover.
// With those two checks off it contradicts no outcome in the bounds
// tried: nobody acted on a record the old leader had not seen committed
// (no success without STAGED, no commit or abort told without COMMIT or
// ABORT), so ignoring such records only loses liveness.
package explore
