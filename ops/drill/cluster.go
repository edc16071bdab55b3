package drill

import (
	"context"
	"errors"
	"fmt"
)

// Role names a kind of process in a cluster.
type Role int

const (
	Coordinator Role = iota // index 0 is the only one
	Participant             // index 0 .. len(ParticipantURLs())-1
)

func (r Role) String() string {
	if r == Coordinator {
		return "coordinator"
	}
	return "participant"
}

// Cluster is the system under attack: one coordinator and its
// participants, wherever they run. The drill drives it only through this
// interface, so that the same drill runs against local processes
// (LocalCluster), against deployed hosts over SSH, or against a cluster it
// cannot touch (Static, load and checks without faults).
//
// Contract:
//
//   - Processes are addressed as (role, i): (Coordinator, 0) and
//     (Participant, i) for i in [0, len(ParticipantURLs())). Any other
//     address is an error.
//   - Kill crashes the process the hard way (SIGKILL: no flush, no
//     shutdown handler) and returns only once it is gone, so that its
//     port and files are free. Killing a paused process works.
//   - Restart starts a killed process again with the same configuration,
//     address and data. It returns once the process serves XML-RPC at its
//     URL (or ctx ends). Restarting a running process is an error.
//   - Pause stops the process without killing it (SIGSTOP: it keeps its
//     sockets and data, answers nothing, and its peers see timeouts);
//     Resume lets it go on (SIGCONT). Both return once the signal is sent.
//   - Healthy returns nil when every process is running and not paused,
//     and otherwise an error naming each process that is not, and in
//     particular any that exited without being killed by Kill (a crash
//     the drill did not inject is a finding, never to be papered over).
//   - ReadTxlog returns the bytes of the coordinator's transaction log
//     file as they are now.
//   - Close stops what the Cluster started (a cluster it only targets is
//     left running) and releases its resources; it is idempotent.
//
// Methods return errors.ErrUnsupported for what an implementation cannot
// do (Static cannot kill). The drill calls one method at a time.
type Cluster interface {
	CoordinatorURL() string
	ParticipantURLs() []string
	Kill(ctx context.Context, role Role, i int) error
	Restart(ctx context.Context, role Role, i int) error
	Pause(ctx context.Context, role Role, i int) error
	Resume(ctx context.Context, role Role, i int) error
	Healthy(ctx context.Context) error
	ReadTxlog(ctx context.Context) ([]byte, error)
	Close() error
}

// Static is a running cluster the drill may load and check but not
// attack: it has no way to signal the processes or to read their files.
type Static struct {
	Coordinator  string   // coordinator URL
	Participants []string // participant URLs
}

var (
	_ Cluster = (*Static)(nil)
	_ Cluster = (*LocalCluster)(nil)
)

func (s *Static) CoordinatorURL() string    { return s.Coordinator }
func (s *Static) ParticipantURLs() []string { return s.Participants }

func (s *Static) Kill(context.Context, Role, int) error    { return errors.ErrUnsupported }
func (s *Static) Restart(context.Context, Role, int) error { return errors.ErrUnsupported }
func (s *Static) Pause(context.Context, Role, int) error   { return errors.ErrUnsupported }
func (s *Static) Resume(context.Context, Role, int) error  { return errors.ErrUnsupported }
func (s *Static) Healthy(context.Context) error            { return nil }
func (s *Static) ReadTxlog(context.Context) ([]byte, error) {
	return nil, errors.ErrUnsupported
}
func (s *Static) Close() error { return nil }

// checkAddr validates (role, i) against a cluster of n participants.
func checkAddr(role Role, i, n int) error {
	switch {
	case role == Coordinator && i == 0:
		return nil
	case role == Participant && i >= 0 && i < n:
		return nil
	}
	return fmt.Errorf("drill: no process %v %d in a cluster of %d participants", role, i, n)
}
