// Package drill attacks a twopc cluster and checks that it kept its
// promises: a randomized recovery drill with a linearizability checker.
//
// A drill (Run) drives a Cluster, the one interface between the drill and
// the processes it attacks (local children in ops/launch; deployed hosts
// over SSH in ops/deploy), which names them as the coordinator does.
// Concurrent clients run one of two loads, and record every operation
// with its call and return times and its outcome:
//
//   - the random load (default): put, get and delete over a few keys, so
//     that they conflict, and a share (Config.TxnRatio, 0.3) of txn calls
//     with compares on value, version or existence, success and failure
//     branches of put, delete and get (txngen.go);
//   - the bank (Config.Bank accounts): transfers that read two accounts
//     with their versions, then write both on condition that neither
//     changed, and audits that read every account in one txn (bank.go).
//
// Meanwhile a seeded generator injects faults (FaultConfig, schedule.go,
// inject.go):
//
//   - on processes, one at a time: SIGKILL the coordinator or a
//     participant and restart it, or SIGSTOP a participant for longer
//     than the prepare timeout and SIGCONT it;
//   - on the network between the coordinator and a participant
//     (NetworkFaults, through internal/faultproxy: the Cluster's
//     LinkFault), in one direction or both: delay every chunk, black-hole
//     the traffic (a partition: silence, no reset), or cut the
//     connections. These overlap the faults on processes and each other,
//     up to FaultConfig.MaxActive at once;
//   - with several coordinators (Cluster.Coordinators;
//     FaultConfig.ForCoordinators), on the one that leads now, per
//     status: SIGKILL it (KillLeader) or SIGSTOP it (PauseLeader), or
//     cut it off, with the fault proxies, from every participant or
//     from every other coordinator (PartitionFaults: drop or cut, in
//     one direction or both); or SIGKILL a follower (KillFollower);
//     or, with three or more and a CoordinatorLoser, lose a follower
//     with its raft log and replace it with a new coordinator under a
//     new name (LoseFollower: coordinators.remove and
//     coordinators.add on the leader; alone, as LoseParticipant).
//     One fault on a coordinator at a time, so that a majority always
//     leads. After each fault that takes the leader away from the
//     others, the faulter waits until another coordinator leads in a
//     higher term before it undoes the fault (FaultConfig.LeaderWait;
//     past it, a finding), and counts the takeover. The load's clients
//     are spread over every coordinator and move on to the next when
//     theirs does not answer;
//   - with LoseParticipant (not a default: it needs the coordinator's
//     --exclude-after and rejoining), replace a participant with an
//     empty one: kill it, delete its database, restart it once the
//     coordinator has excluded it, and wait for it to be active again;
//     nothing else runs meanwhile, so that no more participants are
//     behind at once than the design allows to lose.
//
// Then the load stops, the drill waits for the cluster to settle, and
// checks:
//
//   - never stuck: within SettleTimeout, every participant is active at
//     the coordinator, nothing is in doubt there, nothing prepared at a
//     participant, every COMMIT in the txlog has its END, and afterwards
//     a write to every key succeeds;
//   - the replicas' digests are identical;
//   - the history, plus a final read of every key at every replica, is
//     linearizable (Check: porcupine, with the model below);
//   - the bank only: every audit, and the final reads at each replica,
//     find every account, none negative, and the total the accounts were
//     created with (CheckBank: arithmetic a reader can redo by hand, and
//     independent of porcupine);
//   - the txlog reads back cleanly and compaction keeps it small (with
//     several coordinators, the leader's copy of the raft log: a
//     follower's copy writes its commit index only with new entries,
//     so it never knows the last ones committed; every entry of a
//     leader's copy is or will be committed, consensus.ScanLeaderBytes);
//   - with several coordinators, every one names the same leader in the
//     same term once settled (Probe.oneLeader);
//   - fencing's end state (checkTerms): after the final writes, every
//     participant's highest term seen is the leader's, and no status
//     during the drill gave a higher one. Each participant's
//     stale_term_refusals, summed over its kills, go in the summary.
//
// # The model
//
// Transactions read and write several keys in one step, so keys are not
// independent registers: the model's state is every key of the history,
// each missing or a value with its version, and its step for a txn is
// protocol.Evaluate, the function each participant runs, so the checker
// cannot drift from the server's semantics (model.go); put, get and
// delete are the one-op transactions they are inside. Keys that no
// operation links are still independent, and the history is
// linearizable if and only if each group of linked keys' is
// (P-compositionality): Check checks each group on its own
// (model.partition).
//
// # What the check costs, and what the drill does about it
//
// Porcupine's search is exponential in the worst case, and its cache
// takes memory quadratic in the length of each group's history (a bitset
// of the group's operations per state visited). What makes the search
// blow up is writes of unknown outcome: each may take effect at any
// moment after its call, or never. A drill's first version, whose
// transactions spanned any 1-3 of 8 keys, linked every key into one group,
// and porcupine did not finish one minute of it (about 9,000 operations,
// 76 unknown writes) in five minutes. Four things keep it checkable, none
// of which accepts a history that is not linearizable:
//
//   - An unknown write whose value a read returned is pinned: it took
//     effect before that read returned (values are unique per put, so no
//     other write explains the read), and it is checked as an operation
//     that ended there.
//   - Each group is first checked with every unknown write taking effect
//     during its call or never, two possibilities the model carries
//     together as a set of states (states.go), so this needs no search
//     for where they took effect. Proving that history linearizable proves the real one is.
//     A coordinator restarted after a kill locks the keys of all its log
//     left unfinished before it serves again, so whatever it decides
//     takes effect before any later operation on those keys, which the
//     history cannot tell from "during the call": for a correct cluster
//     this nearly always settles it. The whole search (an unknown
//     write's late half free to take effect anywhere after its call)
//     runs only where it does not; Verdict.Searched counts it.
//   - The random load's transactions draw their keys from groups of
//     Config.KeyGroup (3) keys, so its history splits into several
//     groups; put, get and delete link nothing. The bank's audits link
//     every account, so its history is one group (10 minutes of it,
//     uncut, took porcupine 2 GB); but every 5 s one audit runs while
//     every other call waits, and a read of every key of a group that
//     overlaps no other operation fixes the group's whole state: the
//     history is cut there (segments), and each piece checked from the
//     state that read found.
//   - CheckTimeout (5 minutes) bounds the search's time, and
//     CheckMemory (half of the machine's memory) its resident memory:
//     porcupine cannot be stopped but by its timeout, so the search runs
//     in a child process, killed past the bound (CheckBounded,
//     bounded.go); one drill's re-check had grown to 24 GB. Past either,
//     the verdict is Unknown, and the drill reports UNKNOWN and names the
//     groups left undecided: not a pass, and not a violation either.
//
// On this project's 2-core machines, 10 minutes of either load with a
// fault every second is checked in seconds; the README has figures.
//
// # Why the verdict can be trusted
//
// Invariants the drill keeps:
//
//   - An outcome is recorded as Failed (no effect) only when the API
//     promises it: fault 2 or 3, or a connection refused before any byte
//     was sent. Fault 6 and anything else that is not a result is
//     Unknown, which Check lets take effect at any time after its call,
//     or never. An undocumented fault or reply is also a violation of its
//     own.
//   - In the random load, every put (plain or in a txn) writes a value no
//     other put writes, so a read names the one write it saw: a read of a
//     failed or lost write cannot be explained away by another write. The
//     bank's balances repeat; Check does not pin its unknown writes, and
//     versions, which only grow there, tell its writes apart.
//   - Keys carry a prefix new to each run, so that they are absent when
//     the drill starts (the model's initial state) even on a cluster that
//     holds data.
//   - The clock is monotonic and shared by all clients; a client that
//     lost a call in flight continues under a new client number, so that
//     no client is seen issuing two calls at once.
//   - The seed fixes what each client attempts and the fault schedule
//     (kinds, targets, gaps, durations, directions: each fault is drawn
//     in full before the faulter waits for its turn); the interleaving
//     with the load, and of overlapping faults, is up to the machine.
//     Every fault is completed (restart, resume, link healed) before the
//     drill stops; a fault on a process, before the next one on a
//     process.
//   - The drill's own calls to participants (prepared, digest, final
//     reads) go to their real addresses, never through the fault
//     proxies: a check must see the cluster, not the faults.
//
// The tests plant bugs in hand-made histories and require each checker to
// refuse them: half-applied and fractured transactions, stale reads and
// versions, compares that held when they could not, lost acknowledged
// writes, replicas that differ (check_test.go, check_txn_test.go); audits
// and replicas that break the bank's total, and bank histories whose sums
// are right but which only Check refuses (bankcheck_test.go).
// TestDrillCatchesADivergentReplica does it against a real cluster;
// TestTermsCheck plants participants behind and ahead of the leader's
// term, and TestLeaderFaultsOneCoordinatorAtATime and
// TestNoTakeoverIsAFinding check the faulter's rules against a script.
//
// A participant that accepted a stale term is, for the history, mostly
// invisible: raft keeps a deposed leader from logging any decision, so
// what it gets accepted is prepares that later abort. It could show in
// one place: a leader cut off from the other coordinators, until it steps
// down, does not know a transaction the new leader committed but has not
// applied everywhere yet, so a read from a participant would see the
// value before it (coordinator/read.go), a stale read. Two guards stand
// in the way: the leader answers no read before a majority confirmed it
// still leads (consensus.Node.ConfirmLeader), and the participant, which
// prepared that transaction with the new term, refuses the old one. The
// linearizability check refuses such a read; the window is a fraction of
// a second per partition, so a drill would catch the two guards missing
// by chance only (participant's build tag twopc_nofence plants one).
//
// FaultConfig is the fault profile: Chaos (every kind, at random, for a
// duration) or CoordinatorKills (N kills of the coordinator, then the
// checks), both through the same load, settle check (Probe.Settle) and
// checker. A drill that passes deletes its keys (they share a prefix new
// to the run); one that fails keeps them and says where.
//
// To add an operation: give it a Kind and the fields its call and reply
// need in Op (history.go); have load.client draw it and load.do make the
// call and read the reply, with outcomeOf for errors (load.go); and teach
// the model its step (model.go), with the keys it links.
//
// Check is usable on its own: a History in (ReadHistory reads the file a
// drill writes), a Verdict out; CheckBank likewise for a bank drill's.
package drill
