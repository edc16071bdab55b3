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
		"SQLite write transactions (one WAL fsync each) since the participant started.", nil, nil)
)

// storeCollector reads a participant store's Stats at every scrape.
type storeCollector struct {
	stats func() participant.Stats
}

func (storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descStorePrepared
	ch <- descStoreRequests
	ch <- descStoreBatches
}

func (sc storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := sc.stats()
	ch <- prometheus.MustNewConstMetric(descStorePrepared, prometheus.GaugeValue, float64(st.Prepared))
	for kind, n := range map[string]uint64{"prepare": st.Prepares, "commit": st.Commits, "abort": st.Aborts} {
		ch <- prometheus.MustNewConstMetric(descStoreRequests, prometheus.CounterValue, float64(n), kind)
	}
	ch <- prometheus.MustNewConstMetric(descStoreBatches, prometheus.CounterValue, float64(st.Batches))
}
