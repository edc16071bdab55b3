// Package proc runs twopc processes as children of the current one, so that
// tests, drills and `twopc local` can start them, kill them with real
// signals (SIGKILL, SIGSTOP, SIGCONT) and start them again on the same
// data; Supervise restarts a child that crashes, within a budget, for
// `twopc local` and `twopc supervise`.
//
// Invariants:
//   - A Process runs at most one child at a time: Start refuses while the
//     previous child is alive, and Kill returns only once the child has
//     been reaped, so its ports and files are free for the next one.
//   - Every child appends stdout and stderr to one log file that survives
//     restarts; proc writes a "--- proc:" line there at every start and
//     signal, so a log reads as the history of that process.
//   - A child dies with its parent (Pdeathsig): a test or drill killed
//     itself never leaves a cluster running behind it.
//   - An exit proc did not cause (no Kill, no Terminate) is remembered and
//     reported by Unexpected: a drill must not mistake a crash for a fault
//     it injected.
//   - Supervise restarts only crashes (a signal or a non-zero status), as
//     systemd's Restart=on-failure does, after a pause and within a budget
//     of restarts per window; it says why each time, in the child's log
//     and to its hooks.
package proc
