package drill

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/twopc/twopc/api"
	"github.com/twopc/twopc/consensus"
	"github.com/twopc/twopc/coordinator"
	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/peer"
	"github.com/twopc/twopc/txlog"
)

// Probe makes the drill's own calls to a cluster: to the coordinator
// through CoordinatorHTTP and to participants through ParticipantHTTP
// (which may present tokens or trust a CA; nil is a plain client). It is
// also how tests outside the drill wait for a cluster to settle.
type Probe struct {
	Cluster
	CoordinatorHTTP, ParticipantHTTP *http.Client
}

// call calls the coordinator, bounded by a few seconds: a settled cluster
// answers at once, so a slow answer is itself a reason to keep waiting.
func (p Probe) call(ctx context.Context, method string, args ...any) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return rpc.NewClient(p.URL(p.Coordinator()), p.CoordinatorHTTP).Call(ctx, method, args...)
}

// participant is a client of the participant called name, for reads only:
// it carries no term (see peer.NewClient).
func (p Probe) participant(name string) *peer.Client {
	return peer.NewClient(p.URL(name), p.ParticipantHTTP, 0)
}

// Settle waits until the cluster has finished what the faults left:
// every process running, every participant active at the coordinator
// (none excluded or catching up), nothing in doubt or being prepared at
// the coordinator, nothing prepared at any participant, no commit
// without its end in the txlog. "Never stuck" is a promise with no
// deadline, so the drill needs one: past timeout, what is still
// unfinished is returned as an error, which the drill reports as a
// violation.
func (p Probe) Settle(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if err := p.Healthy(ctx); err != nil {
			// A process that died on its own will not come back by waiting.
			return fmt.Errorf("cluster not healthy: %w", err)
		}
		err := p.unsettled(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not settled %v after the load stopped: %w", timeout, err)
		case <-time.After(100 * time.Millisecond): // poll interval
		}
	}
}

// unsettled returns why the cluster has not settled yet, or nil.
func (p Probe) unsettled(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := api.NewClient(p.URL(p.Coordinator()), p.CoordinatorHTTP).Status(sctx)
	if err != nil {
		return fmt.Errorf("coordinator status: %w", err)
	}
	if st.InDoubt != 0 || st.Active != 0 {
		return fmt.Errorf("coordinator: %d transactions in doubt, %d active", st.InDoubt, st.Active)
	}
	// A participant that is not active (excluded, catching up) is behind:
	// its digest cannot match yet, and the write set is short of it.
	for _, ps := range st.Participants {
		if ps.State != coordinator.StateActive {
			return fmt.Errorf("coordinator: %s is %s, not %s", ps.Name, ps.State, coordinator.StateActive)
		}
	}
	for _, name := range p.Participants() {
		pts, err := p.participant(name).PreparedTxs(ctx)
		if err != nil {
			return fmt.Errorf("%s prepared: %w", name, err)
		}
		if len(pts) > 0 {
			return fmt.Errorf("%s holds %d transactions prepared, e.g. %s on keys %q", name, len(pts), pts[0].TxID, pts[0].Keys)
		}
	}
	log, err := p.ReadTxlog(ctx)
	if errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the txlog: %w", err)
	}
	st2, err := scanTxlog(log)
	if err != nil {
		return err
	}
	if len(st2.Pending) > 0 {
		return fmt.Errorf("txlog: %d unfinished transactions (staged or committed, never ended), e.g. %s %s", len(st2.Pending), st2.Pending[0].Kind, st2.Pending[0].TxID)
	}
	return nil
}

// states returns each participant's state, as the coordinator's status
// reports it.
func (p Probe) states(ctx context.Context) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := api.NewClient(p.URL(p.Coordinator()), p.CoordinatorHTTP).Status(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, ps := range st.Participants {
		out[ps.Name] = ps.State
	}
	return out, nil
}

// scanTxlog applies txlog's own reading rules to a copy of the log, or
// raft's to a copy of one of several coordinators' raft log.
func scanTxlog(data []byte) (*txlog.State, error) {
	if consensus.IsRaftLogBytes(data) {
		sc, err := consensus.ScanBytes("coordinator raft log (copy)", data)
		if err != nil {
			return nil, err
		}
		// The cluster is at rest: the copy's last entries are
		// committed, though its commit index on disk may lag.
		return sc.All, nil
	}
	return txlog.ScanBytes("coordinator.txlog (copy)", data)
}
