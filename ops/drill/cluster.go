package drill

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Cluster is the system under attack: one coordinator or several, and
// their participants, wherever they run. The drill drives it only through this
// interface, so that the same drill runs against local processes
// (launch.Cluster), against deployed hosts over SSH (deploy.Cluster), or
// against a cluster it cannot touch (Static: load and checks, no faults).
// Its methods use only built-in types, so an implementation need not
// import this package.
//
// Contract:
//
//   - Processes are named: Coordinators() are the coordinators' names
//     (one, or several of which one leads, as status names them),
//     Coordinator() the first of them, and Participants() the
//     participants', as the coordinators know them (--participants,
//     status, the txlog), in a fixed order; these names appear in the
//     drill's output. Any other name is an error.
//   - URL(name) is where the drill calls that process over XML-RPC.
//   - Kill crashes the process the hard way (SIGKILL: no flush, no
//     shutdown handler) and returns only once it is gone, so that its
//     port and files are free; nothing restarts it behind the drill's
//     back. Killing a paused process works.
//   - Restart starts a killed process again with the same configuration,
//     address and data. It returns once the process serves XML-RPC at its
//     URL (or ctx ends). Restarting a running process is an error.
//   - Pause stops the process without killing it (SIGSTOP: it keeps its
//     sockets and data, answers nothing, and its peers see timeouts);
//     Resume lets it go on (SIGCONT). Both return once the signal is sent.
//   - Wipe deletes the data of a killed participant (its database), so
//     that Restart starts it empty under the same name and address: a
//     participant lost with its disk, and its replacement.
//   - LinkFault starts a fault on the network between coordinator a
//     and process b (a participant, or another coordinator), and
//     returns the function that ends it: fault "delay" (every chunk
//     arrives delay late), "drop" (a black hole: nothing arrives,
//     nothing is reset) or "cut" (connections reset, new ones refused),
//     in direction "up" (a to b), "down" or "both". It reaches all the
//     traffic between the two (a coordinator's calls and a
//     participant's questions about outcomes; raft's messages and
//     forwarded requests between coordinators), and none of the
//     drill's own calls or its clients' (URL). Faults on one link
//     overlap: each lasts until its own end is called (see
//     internal/faultproxy).
//   - Healthy returns nil when every process is running and not paused,
//     and otherwise an error naming each process that is not, and in
//     particular any that exited without being killed by Kill (a crash
//     the drill did not inject is a finding, never to be papered over).
//   - ReadTxlog returns the bytes of the named coordinator's
//     transaction log file as they are now: with several coordinators,
//     its copy of the replicated (raft) log.
//   - Close stops what the Cluster started (a cluster it only targets is
//     left running) and releases its resources; it is idempotent.
//
// Methods return errors.ErrUnsupported for what an implementation cannot
// do (Static cannot kill; deploy.Cluster has no fault proxies). Faults on
// processes come one at a time (Kill, Restart, Pause, Resume, Wipe); the
// drill may call LinkFault and the functions it returns concurrently
// with them and with each other, and calls the rest once faults are over.
type Cluster interface {
	Coordinator() string
	Coordinators() []string
	Participants() []string
	URL(name string) string
	Kill(ctx context.Context, name string) error
	Restart(ctx context.Context, name string) error
	Pause(ctx context.Context, name string) error
	Resume(ctx context.Context, name string) error
	Wipe(ctx context.Context, name string) error
	LinkFault(ctx context.Context, a, b, fault, direction string, delay time.Duration) (end func(), err error)
	Healthy(ctx context.Context) error
	ReadTxlog(ctx context.Context, coordinator string) ([]byte, error)
	Close() error
}

// CoordinatorLoser is a Cluster of several coordinators that can lose
// one with its disk and start a new one in its place, for LoseFollower
// (launch.Cluster is one):
//
//   - LoseCoordinator deletes the raft log of a killed coordinator and
//     forgets it: from then on Coordinators does not name it, and
//     Healthy does not check it. Its name is never used again. (Taking
//     it out of the group is coordinators.remove's work, which the drill
//     asks of the leader.)
//   - AddCoordinator starts a new coordinator called name, with an
//     empty log, that joins the group (--join) whose members are members
//     (name: URL), and returns its URL once it serves; from then on
//     Coordinators names it. (Making it a member is coordinators.add's
//     work.)
//
// Both are called with no other fault under way.
type CoordinatorLoser interface {
	Cluster
	LoseCoordinator(ctx context.Context, name string) error
	AddCoordinator(ctx context.Context, name string, members map[string]string) (string, error)
}

// Static is a running cluster the drill may load and check but not
// attack: it has no way to signal the processes or to read their files.
type Static struct {
	coordURL string
	names    []string
	urls     map[string]string
}

var _ Cluster = (*Static)(nil)

// NewStatic describes a running cluster by its coordinator's URL and its
// participants, each NAME=URL as the coordinator's --participants has
// them, or a bare URL (then named p1, p2, ... in order).
func NewStatic(coordURL string, members []string) *Static {
	s := &Static{coordURL: coordURL, urls: map[string]string{}}
	for i, m := range members {
		name, url, ok := strings.Cut(m, "=")
		if !ok || strings.Contains(name, "/") {
			name, url = fmt.Sprintf("p%d", i+1), m
		}
		s.names = append(s.names, name)
		s.urls[name] = url
	}
	return s
}

func (s *Static) Coordinator() string    { return "coordinator" }
func (s *Static) Coordinators() []string { return []string{s.Coordinator()} }
func (s *Static) Participants() []string { return s.names }

func (s *Static) URL(name string) string {
	if name == s.Coordinator() {
		return s.coordURL
	}
	return s.urls[name]
}

func (s *Static) Kill(context.Context, string) error    { return errors.ErrUnsupported }
func (s *Static) Restart(context.Context, string) error { return errors.ErrUnsupported }
func (s *Static) Pause(context.Context, string) error   { return errors.ErrUnsupported }
func (s *Static) Resume(context.Context, string) error  { return errors.ErrUnsupported }
func (s *Static) Wipe(context.Context, string) error    { return errors.ErrUnsupported }
func (s *Static) LinkFault(context.Context, string, string, string, string, time.Duration) (func(), error) {
	return nil, errors.ErrUnsupported
}
func (s *Static) Healthy(context.Context) error { return nil }
func (s *Static) ReadTxlog(context.Context, string) ([]byte, error) {
	return nil, errors.ErrUnsupported
}
func (s *Static) Close() error { return nil }
