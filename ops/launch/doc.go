// Package launch runs a twopc cluster on loopback: a coordinator and its
// participants, each a child process of this one (package proc), with
// their data, transaction log, process logs and peer token in one folder.
// It is the one launcher behind `twopc local`, `twopc drill` and the tests
// that run real processes (ops/drill, e2e).
//
// A Cluster addresses its processes by name: "coordinator" (or c1, c2,
// ... with several), and "p1", "p2", ... as the coordinator knows its
// participants. It has the methods ops/drill's Cluster asks for (kill,
// restart, pause, resume, wipe, health, txlog, and with
// Config.NetworkFaults faults on the network between each coordinator
// and each participant, and between every two coordinators, through
// internal/faultproxy: links.go), and Supervise, which restarts a
// process that crashes and says what happened, for `twopc local`.
//
// Invariants:
//   - Start returns only once every process serves XML-RPC (participants
//     first, so the coordinator finds them), or fails naming the process
//     and showing the end of its log; nothing is left running on failure.
//   - The participants answer only calls that present the peer token
//     (Dir/peer.token, made once, mode 0600); PeerHTTP presents it.
//   - The processes die with this one (SIGTERM, see proc), so a test or a
//     drill that is killed leaves no cluster behind.
//   - Restart starts the same process again on the same ports and data
//     (none, after Wipe).
//   - With NetworkFaults, every two processes that talk to each other
//     (a coordinator and a participant, two coordinators) do so only
//     through their link's proxies; URL and this package's clients
//     reach every process directly, so that what a drill checks is
//     never hidden by a fault it injected.
package launch
