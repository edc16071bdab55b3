// Package drill attacks a twopc cluster and checks that it kept its
// promises: a randomized recovery drill with a linearizability checker.
//
// A drill (Run) drives a Cluster, the one interface between the drill and
// the processes it attacks (local children in ops/launch; deployed hosts
// over SSH in ops/deploy), which names them as the coordinator does.
// Concurrent clients do random put/get/delete over a
// few keys, so that transactions conflict, and record every operation with
// its call and return times and its outcome. Meanwhile a seeded generator
// injects one fault at a time: SIGKILL the coordinator or a participant
// and restart it, or SIGSTOP a participant for longer than the prepare
// timeout and SIGCONT it. Then the load stops, the drill waits for the
// cluster to settle, and checks:
//
//   - never stuck: within SettleTimeout, nothing is in doubt at the
//     coordinator, nothing prepared at a participant, every COMMIT in the
//     txlog has its END, and afterwards a write to every key succeeds;
//   - the replicas' digests are identical;
//   - the history, plus a final read of every key at every replica, is
//     linearizable (Check, with porcupine, keys as independent registers);
//   - the txlog reads back cleanly and compaction keeps it small.
//
// Invariants the drill keeps so that its verdict can be trusted:
//
//   - An outcome is recorded as Failed (no effect) only when the API
//     promises it: fault 2 or 3, or a connection refused before any byte
//     was sent. Anything else that is not a result is Unknown, and Check
//     lets an Unknown write take effect at any time after its call, or
//     never. An undocumented fault is also a violation of its own.
//   - Every put writes a value no other put writes, so a read names the
//     one write it saw: a read of a failed or lost write cannot be
//     explained away by another write.
//   - Keys carry a prefix new to each run, so that they are absent when
//     the drill starts (the model's initial state) even on a cluster that
//     holds data.
//   - The clock is monotonic and shared by all clients; a client that
//     lost a call in flight continues under a new client number, so that
//     no client is seen issuing two calls at once.
//   - The seed fixes what each client attempts and the fault schedule
//     (kinds, targets, gaps, durations); the interleaving with the load
//     is up to the machine. Every fault is completed (restart, resume)
//     before the next one and before the drill stops.
//
// FaultConfig is the fault profile: Chaos (every kind, at random, for a
// duration) or CoordinatorKills (N kills of the coordinator, then the
// checks), both through the same load, settle check (Probe.Settle) and
// checker. A drill that passes deletes its keys (they share a prefix new
// to the run); one that fails keeps them and says where.
//
// To add an operation (a multi-key txn, a bank transfer): give it a Kind
// and the fields its call and reply need in Op (history.go); have
// load.client draw it and load.do make the call and read the reply, with
// outcomeOf for errors (load.go); and teach the model its step (check.go).
// An operation over several keys cannot be checked key by key: it needs a
// model whose Partition keeps the keys it touches together (or none).
//
// Check is usable on its own: a History in (ReadHistory reads the file a
// drill writes), a Verdict out.
package drill
