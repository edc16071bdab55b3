package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twopc/twopc/participant"
)

// Participant is the metrics of a participant process: ObserveCommit,
// ObserveBatch and ObserveApplyStep go into participant.Options, and
// Watch adds the store's counters.
type Participant struct {
	*Server
	commit prometheus.Histogram
	batch  *prometheus.HistogramVec
	step   prometheus.Histogram
}

// NewParticipant returns a participant's metrics, its hook ready before
// the store exists.
func NewParticipant() *Participant {
	p := &Participant{
		Server: newServer(),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "twopc_sqlite_commit_duration_seconds",
			Help:    "How long each batch of prepares, commits and aborts took to become durable: its vote log's fsync, and its SQLite commit (a WAL fsync) if it changed kv or meta.",
			Buckets: latencyBuckets,
		}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "twopc_store_batch_duration_seconds",
			Help: "How long each batch took on the participant's writer, from its start to durable, which every prepare and commit in it waited; " +
				`apply="yes": the batch also copied every committed write waiting into kv (too many waited, or a catch-up).`,
			Buckets: latencyBuckets,
		}, []string{"apply"}),
		step: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "twopc_store_apply_step_duration_seconds",
			Help:    "How long each step of the apply cycle took to copy a range of committed writes into kv and commit, beside the writer (no prepare waits for it).",
			Buckets: latencyBuckets,
		}),
	}
	p.reg.MustRegister(p.commit, p.batch, p.step)
	return p
}

// ObserveCommit is participant.Options.ObserveCommit.
func (p *Participant) ObserveCommit(d time.Duration) { p.commit.Observe(d.Seconds()) }

// ObserveBatch is participant.Options.ObserveBatch.
func (p *Participant) ObserveBatch(d time.Duration, applied bool) {
	apply := "no"
	if applied {
		apply = "yes"
	}
	p.batch.WithLabelValues(apply).Observe(d.Seconds())
}

// ObserveApplyStep is participant.Options.ObserveApplyStep.
func (p *Participant) ObserveApplyStep(d time.Duration) { p.step.Observe(d.Seconds()) }

// Watch adds the metrics read from stats at every scrape. Call it once,
// when the store is open.
func (p *Participant) Watch(stats func() participant.Stats) {
	p.reg.MustRegister(storeCollector{stats: stats})
}
