package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/twopc/twopc/participant"
)

var (
	descStorePrepared = prometheus.NewDesc("twopc_store_prepared",
		"Transactions this participant holds prepared (their keys are locked).", nil, nil)
	descStoreRequests = prometheus.NewDesc("twopc_store_requests_total",
		"Prepares, commits and aborts this participant applied since it started, by kind.", []string{"kind"}, nil)
	descStoreBatches = prometheus.NewDesc("twopc_store_batches_total",
		"Batches of prepares, commits and aborts the participant made durable together since it started.", nil, nil)
	descStoreFsyncs = prometheus.NewDesc("twopc_store_fsyncs_total",
		"fsyncs since the participant started: of its vote log, and one per SQLite commit (WAL).", nil, nil)
	// Named store_, not participant_, as every metric of the participant's
	// own: a coordinator's twopc_participant_* are per participant.
	descStoreStaleTerm = prometheus.NewDesc("twopc_store_stale_term_refusals_total",
		"Calls refused since the participant started because their coordinator's term was below the highest seen: a replaced coordinator still calling.", nil, nil)
	descStoreTerm = prometheus.NewDesc("twopc_store_term",
		"The highest coordinator term this participant has seen (fencing).", nil, nil)
	descStoreKVReads = prometheus.NewDesc("twopc_store_kv_reads_total",
		"Prepares' reads of a key's committed entry since the participant started, by source: the cache, or a SQLite query (many of these: raise --kv-cache-bytes).", []string{"source"}, nil)
)

// storeCollector reads a participant store's Stats at every scrape.
type storeCollector struct {
	stats func() participant.Stats
}

func (storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descStorePrepared
	ch <- descStoreRequests
	ch <- descStoreBatches
	ch <- descStoreFsyncs
	ch <- descStoreStaleTerm
	ch <- descStoreTerm
	ch <- descStoreKVReads
}

func (sc storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := sc.stats()
	ch <- prometheus.MustNewConstMetric(descStorePrepared, prometheus.GaugeValue, float64(st.Prepared))
	for kind, n := range map[string]uint64{"prepare": st.Prepares, "commit": st.Commits, "abort": st.Aborts} {
		ch <- prometheus.MustNewConstMetric(descStoreRequests, prometheus.CounterValue, float64(n), kind)
	}
	ch <- prometheus.MustNewConstMetric(descStoreBatches, prometheus.CounterValue, float64(st.Batches))
	ch <- prometheus.MustNewConstMetric(descStoreFsyncs, prometheus.CounterValue, float64(st.Fsyncs))
	ch <- prometheus.MustNewConstMetric(descStoreStaleTerm, prometheus.CounterValue, float64(st.StaleTermRefusals))
	ch <- prometheus.MustNewConstMetric(descStoreTerm, prometheus.GaugeValue, float64(st.Term))
	ch <- prometheus.MustNewConstMetric(descStoreKVReads, prometheus.CounterValue, float64(st.KVCacheHits), "cache")
	ch <- prometheus.MustNewConstMetric(descStoreKVReads, prometheus.CounterValue, float64(st.KVQueries), "sqlite")
}
