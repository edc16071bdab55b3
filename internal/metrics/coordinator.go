package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twopc/twopc/coordinator"
)

// Coordinator is the metrics of a coordinator process: its hooks go into
// coordinator.Config.Observer and txlog.Options.ObserveFsync, and Watch
// adds what its Status reports.
type Coordinator struct {
	*Server
	phases     *prometheus.HistogramVec
	fsync      prometheus.Histogram
	membership *prometheus.CounterVec
}

var _ coordinator.Observer = (*Coordinator)(nil)

// NewCoordinator returns a coordinator's metrics, hooks ready, before the
// log and the coordinator they observe exist.
func NewCoordinator() *Coordinator {
	c := &Coordinator{
		Server: newServer(),
		phases: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "twopc_phase_duration_seconds",
			Help: "Two-phase commit phases: prepare, from the first prepare sent to the decision; " +
				"commit, from the decision to the last participant's acknowledgement (transactions acknowledged at the first try).",
			Buckets: latencyBuckets,
		}, []string{"phase"}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "twopc_txlog_fsync_duration_seconds",
			Help:    "Each fsync of a batch of the coordinator's transaction log.",
			Buckets: latencyBuckets,
		}),
		membership: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twopc_membership_changes_total",
			Help: "Changes of a participant's place in the write set, by the state it entered (excluded).",
		}, []string{"participant", "state"}),
	}
	// Both phases show from the start, with zero counts.
	c.phases.WithLabelValues(coordinator.PhasePrepare)
	c.phases.WithLabelValues(coordinator.PhaseCommit)
	c.reg.MustRegister(c.phases, c.fsync, c.membership)
	return c
}

// Phase implements coordinator.Observer.
func (c *Coordinator) Phase(name string, d time.Duration) {
	c.phases.WithLabelValues(name).Observe(d.Seconds())
}

// Membership implements coordinator.Observer.
func (c *Coordinator) Membership(participant, state string) {
	c.membership.WithLabelValues(participant, state).Inc()
}

// ObserveFsync is txlog.Options.ObserveFsync.
func (c *Coordinator) ObserveFsync(d time.Duration) { c.fsync.Observe(d.Seconds()) }

// Watch adds the metrics read from status at every scrape. Call it once,
// when the coordinator exists.
func (c *Coordinator) Watch(status func(context.Context) coordinator.Status) {
	c.reg.MustRegister(statusCollector{status: status})
}
