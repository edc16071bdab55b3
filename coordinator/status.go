package coordinator

import (
	"context"
	"sync"
	"time"

	"github.com/twopc/twopc/txlog"
)

// Participant states as status reports them.
const (
	StateActive     = "active"
	StateOffline    = "offline"    // did not answer a probe
	StateOverloaded = "overloaded" // more calls in flight than Config.Overloaded
)

// Status is the coordinator's view of the system.
type Status struct {
	Epoch        uint64
	Participants []ParticipantStatus
	// Committed and Aborted count this incarnation's finished transactions.
	Committed, Aborted uint64
	// InDoubt counts committed transactions not yet acknowledged by every
	// participant; Active counts transactions still being prepared.
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
	// the transport counts them (participant.Client does).
	BytesSent, BytesReceived int64
}

// metered is a participant transport that counts its traffic.
type metered interface{ Traffic() (sent, received int64) }

// Status probes every participant (bounded by a second) and reports.
func (c *Coordinator) Status(ctx context.Context) Status {
	st := Status{
		Epoch:        c.cfg.Epoch,
		Committed:    c.committed.Load(),
		Aborted:      c.aborted.Load(),
		InDoubt:      c.inDoubt.Load(),
		Active:       c.active.Load(),
		CacheHits:    c.cstats.hits.Load(),
		CacheMisses:  c.cstats.misses.Load(),
		Participants: make([]ParticipantStatus, len(c.members)),
	}
	if l, ok := c.cfg.Log.(interface{ Stats() txlog.Stats }); ok {
		ls := l.Stats()
		st.Log = &ls
	}
	var wg sync.WaitGroup
	for i, m := range c.members {
		wg.Go(func() {
			ps := ParticipantStatus{Name: m.Name, URL: m.URL, State: StateActive, InFlight: m.inflight.Load()}
			if t, ok := m.Participant.(metered); ok {
				ps.BytesSent, ps.BytesReceived = t.Traffic()
			}
			ctx, cancel := context.WithTimeout(ctx, min(c.cfg.CallTimeout, time.Second))
			defer cancel()
			pts, err := m.PreparedTxs(ctx)
			switch {
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
