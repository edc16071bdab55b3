package coordinator

import (
	"context"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twopc/twopc/protocol"
	"github.com/twopc/twopc/txlog"
)

// Participant states as status reports them.
const (
	StateActive     = "active"
	StateOffline    = "offline"     // did not answer a probe
	StateOverloaded = "overloaded"  // more calls in flight than Config.Overloaded
	StateExcluded   = "excluded"    // out of the write set (membership.go)
	StateCatchingUp = "catching-up" // excluded, and copying from the write set (catchup.go)
	StateRemoved    = "removed"     // taken out for good (members.go); only Observer hears it
)

// Status is the coordinator's view of the system.
type Status struct {
	Epoch uint64
	// Role is "single" for a coordinator of its own, "leader" for the one
	// leading several (Leader is its name; Term is raft's term, the same
	// number as Epoch), or "follower" for one that forwards to Leader
	// ("" while an election is on).
	Role, Leader string
	Term         uint64
	Participants []ParticipantStatus
	// Committed and Aborted count this incarnation's finished transactions
	// (a transaction with nothing to write counts as committed).
	Committed, Aborted uint64
	// InDoubt counts transactions committed (or being resolved) but not
	// yet acknowledged by every participant; Active counts transactions
	// still being prepared.
	InDoubt, Active int64
	// CacheHits and CacheMisses count gets served from the value cache or
	// from a participant.
	CacheHits, CacheMisses uint64
	// Log is the decision log's counters, when it keeps them (txlog does).
	Log *txlog.Stats
}

// ParticipantStatus is one participant as the coordinator sees it.
type ParticipantStatus struct {
	Name, URL, State string
	InFlight         int64
	// Prepared counts the transactions it holds prepared; unknown (0)
	// while it is offline.
	Prepared int
	// BytesSent and BytesReceived count XML bodies exchanged with it, when
	// the transport counts them (peer.Client does).
	BytesSent, BytesReceived int64
}

// metered is a participant transport that counts its traffic.
type metered interface{ Traffic() (sent, received int64) }

// counters derive from the machines' state changes (count), nowhere else.
type counters struct {
	committed, aborted atomic.Uint64
	active, inDoubt    atomic.Int64
}

// enter counts a machine that starts in state s.
func (c *Coordinator) enter(s protocol.State) { c.count(nil, -1, s) }

// count counts a state change from -> to (from -1: a new machine).
func (c *Coordinator) count(t *tx, from, to protocol.State) {
	if from == to {
		return
	}
	gauge := func(s protocol.State, d int64) {
		switch {
		case s == protocol.Preparing:
			c.counts.active.Add(d)
		case s.InDoubt():
			c.counts.inDoubt.Add(d)
		}
	}
	if from >= 0 {
		gauge(from, -1)
	}
	gauge(to, 1)
	switch {
	case to == protocol.Aborting:
		c.counts.aborted.Add(1)
	case to == protocol.Finished && (from == protocol.Committed || from == protocol.Preparing):
		c.counts.committed.Add(1)
		if t != nil && from == protocol.Committed && !t.decided.IsZero() {
			c.cfg.Observer.Phase(PhaseCommit, time.Since(t.decided))
		}
	}
}

// Status probes every participant (bounded by a second) and reports.
func (c *Coordinator) Status(ctx context.Context) Status {
	st := Status{
		Epoch:        c.cfg.Epoch,
		Role:         "single",
		Term:         c.cfg.Epoch,
		Committed:    c.counts.committed.Load(),
		Aborted:      c.counts.aborted.Load(),
		InDoubt:      c.counts.inDoubt.Load(),
		Active:       c.counts.active.Load(),
		CacheHits:    c.cstats.hits.Load(),
		CacheMisses:  c.cstats.misses.Load(),
		Participants: make([]ParticipantStatus, len(c.roster.Load().members)),
	}
	if c.cfg.Name != "" {
		st.Role, st.Leader = "leader", c.cfg.Name
	}
	if l, ok := c.cfg.Log.(interface{ Stats() txlog.Stats }); ok {
		ls := l.Stats()
		st.Log = &ls
	}
	var wg sync.WaitGroup
	for i, m := range c.roster.Load().members {
		wg.Go(func() {
			ps := ParticipantStatus{Name: m.Name, URL: m.URL, State: StateActive, InFlight: m.inflight.Load()}
			if t, ok := m.Participant.(metered); ok {
				ps.BytesSent, ps.BytesReceived = t.Traffic()
			}
			ctx, cancel := context.WithTimeout(ctx, min(c.cfg.CallTimeout, time.Second))
			defer cancel()
			pts, err := m.PreparedTxs(ctx)
			switch {
			case m.catchingUp.Load():
				ps.State = StateCatchingUp
			case m.excluded.Load():
				ps.State = StateExcluded
			case err != nil:
				ps.State = StateOffline
			case ps.InFlight > int64(c.cfg.Overloaded):
				ps.State = StateOverloaded
			}
			if err == nil {
				ps.Prepared = len(pts)
			}
			st.Participants[i] = ps
		})
	}
	wg.Wait()
	return st
}

func sortStrings(s []string) { sort.Strings(s) }

var _ = slices.Sort[[]string]
