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
// (which may present tokens or trust a CA; nil is a plain client), as
// well as coordinators.add and coordinators.remove, which want the
// participants' (peer) token. It is also how tests outside the drill
// wait for a cluster to settle.
type Probe struct {
	Cluster
	CoordinatorHTTP, ParticipantHTTP *http.Client
}

// call calls the coordinator, bounded by a few seconds: a settled cluster
// answers at once, so a slow answer is itself a reason to keep waiting.
// With several coordinators it calls the first, which forwards to the
// leader.
func (p Probe) call(ctx context.Context, method string, args ...any) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return rpc.NewClient(p.URL(p.Coordinator()), p.CoordinatorHTTP).Call(ctx, method, args...)
}

// statusOf is the status as the coordinator called name gives it (with
// several, a follower's is the leader's, forwarded), bounded by a few
// seconds.
func (p Probe) statusOf(ctx context.Context, name string) (coordinator.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return api.NewClient(p.URL(name), p.CoordinatorHTTP).Status(ctx)
}

// status is the first status a coordinator gives, trying each in turn
// but avoid: while faults are under way one may be down, paused or cut
// off. With one coordinator, that is its status.
func (p Probe) status(ctx context.Context, avoid string) (coordinator.Status, error) {
	var errs []error
	for _, name := range p.Coordinators() {
		if name == avoid {
			continue
		}
		st, err := p.statusOf(ctx, name)
		if err == nil {
			return st, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	return coordinator.Status{}, errors.Join(errs...)
}

// leader is the coordinator that leads now and its term, as the first
// coordinator but avoid that answers says (with one coordinator, that
// one, and its epoch); an error if none says.
func (p Probe) leader(ctx context.Context, avoid string) (string, uint64, error) {
	st, err := p.status(ctx, avoid)
	switch {
	case err != nil:
		return "", 0, err
	case len(p.Coordinators()) == 1:
		return p.Coordinator(), st.Term, nil
	case st.Role != "leader" || st.Leader == "":
		return "", 0, fmt.Errorf("no leader known (role %q, leader %q, term %d)", st.Role, st.Leader, st.Term)
	}
	return st.Leader, st.Term, nil
}

// changeGroup calls coordinators.add or coordinators.remove (method)
// on the coordinator called via, with the peer token, bounded by a
// little more than the coordinator's own wait for the change.
func (p Probe) changeGroup(ctx context.Context, via, method string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, err := rpc.NewClient(p.URL(via), p.ParticipantHTTP).Call(ctx, method, args...)
	return err
}

// group is the coordinator group's members, per coordinators.list from
// the first coordinator that answers.
func (p Probe) group(ctx context.Context) ([]string, error) {
	var errs []error
	for _, name := range p.Coordinators() {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := rpc.NewClient(p.URL(name), p.CoordinatorHTTP).Call(cctx, "coordinators.list")
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		list, _ := res.([]any)
		var out []string
		for _, e := range list {
			m, _ := e.(map[string]any)
			n, _ := m["name"].(string)
			out = append(out, n)
		}
		return out, nil
	}
	return nil, errors.Join(errs...)
}

// leaderOf is the leader and term the coordinator called name names in
// its own status (a follower's is its leader's, forwarded: so it knows
// one and reaches it).
func (p Probe) leaderOf(ctx context.Context, name string) (string, uint64, error) {
	st, err := p.statusOf(ctx, name)
	switch {
	case err != nil:
		return "", 0, err
	case st.Leader == "":
		return "", 0, fmt.Errorf("%s knows no leader (role %q, term %d)", name, st.Role, st.Term)
	}
	return st.Leader, st.Term, nil
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
	st, err := p.oneLeader(ctx)
	if err != nil {
		return err
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
	log, err := p.leaderLog(ctx, st)
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

// waitOneLeader polls oneLeader until it answers, for at most timeout:
// on a settled cluster a heartbeat missed on a busy machine can start an
// election, which is not a fault of the cluster unless it never ends.
func (p Probe) waitOneLeader(ctx context.Context, timeout time.Duration) (coordinator.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		st, err := p.oneLeader(ctx)
		if err == nil {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("no single leader %v after the cluster settled: %w", timeout, err)
		case <-time.After(100 * time.Millisecond): // poll interval, as Settle's
		}
	}
}

// oneLeader returns the leader's status once every coordinator answers
// status, and all name the same leader in the same term (with one
// coordinator, its status): a new leader took over from every old one,
// and every follower knows it.
func (p Probe) oneLeader(ctx context.Context) (coordinator.Status, error) {
	var first coordinator.Status
	for i, name := range p.Coordinators() {
		st, err := p.statusOf(ctx, name)
		switch {
		case err != nil:
			return st, fmt.Errorf("%s status: %w", name, err)
		case len(p.Coordinators()) == 1:
			return st, nil
		case st.Role != "leader" || st.Leader == "":
			return st, fmt.Errorf("%s knows no leader (role %q, term %d)", name, st.Role, st.Term)
		case i == 0:
			first = st
		case st.Leader != first.Leader || st.Term != first.Term:
			return st, fmt.Errorf("%s says %s leads in term %d, %s says %s in term %d",
				p.Coordinator(), first.Leader, first.Term, name, st.Leader, st.Term)
		}
	}
	return first, nil
}

// states returns each participant's state, as the coordinators' status
// reports it.
func (p Probe) states(ctx context.Context) (map[string]string, error) {
	st, err := p.status(ctx, "")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, ps := range st.Participants {
		out[ps.Name] = ps.State
	}
	return out, nil
}

// leaderLog reads the log of the coordinator whose status st is: the
// leader's copy, with several (see consensus.ScanLeaderBytes: a
// follower's copy does not know the last entries committed).
func (p Probe) leaderLog(ctx context.Context, st coordinator.Status) ([]byte, error) {
	name := p.Coordinator()
	if len(p.Coordinators()) > 1 {
		name = st.Leader
	}
	return p.ReadTxlog(ctx, name)
}

// scanTxlog applies txlog's own reading rules to a copy of the log, or
// consensus's to the leader's copy of a raft log (several coordinators).
func scanTxlog(data []byte) (*txlog.State, error) {
	if consensus.IsRaftLogBytes(data) {
		sc, err := consensus.ScanLeaderBytes("raft log (the leader's copy)", data)
		if err != nil {
			return nil, err
		}
		return sc.State, nil
	}
	return txlog.ScanBytes("coordinator.txlog (copy)", data)
}

// refusals is a participant's count of stale-term refusals since it
// started (stats).
func (p Probe) refusals(ctx context.Context, name string) (int64, error) {
	s, err := p.participant(name).Stats(ctx)
	return s["stale_term_refusals"], err
}
