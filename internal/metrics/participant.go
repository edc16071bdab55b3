package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twopc/twopc/participant"
)

// Participant is the metrics of a participant process: ObserveCommit and
// ObserveBatch go into participant.Options, and Watch adds the store's
// counters.
type Participant struct {
	*Server
	commit prometheus.Histogram
	batch  *prometheus.HistogramVec
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
				`apply="yes": the batch also copied committed writes into kv (a step of the apply cycle).`,
			Buckets: latencyBuckets,
		}, []string{"apply"}),
	}
	p.reg.MustRegister(p.commit, p.batch)
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

// Watch adds the metrics read from stats at every scrape. Call it once,
// when the store is open.
func (p *Participant) Watch(stats func() participant.Stats) {
	p.reg.MustRegister(storeCollector{stats: stats})
}
