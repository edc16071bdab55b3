package metrics

import (
	"context"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twopc/twopc/coordinator"
)

// statusTimeout bounds the coordinator's probe of its participants during
// a scrape (Status bounds each probe to a second itself).
const statusTimeout = 5 * time.Second

// participantStates are the states a participant_state series is kept
// for, each 1 or 0, so that an alert can test "== 1" and a state that is
// left shows 0 instead of vanishing.
var participantStates = []string{coordinator.StateActive, coordinator.StateOffline, coordinator.StateOverloaded,
	coordinator.StateExcluded, coordinator.StateCatchingUp}

var (
	descTransactions = prometheus.NewDesc("twopc_transactions_total",
		"Transactions finished by this coordinator since it started (see twopc_epoch), by outcome: committed (every participant acknowledged) or aborted.",
		[]string{"outcome"}, nil)
	descInDoubt = prometheus.NewDesc("twopc_transactions_in_doubt",
		"Committed transactions that not every participant has acknowledged yet (their keys stay locked).", nil, nil)
	descActive = prometheus.NewDesc("twopc_transactions_active",
		"Transactions being prepared now.", nil, nil)
	descEpoch = prometheus.NewDesc("twopc_epoch",
		"The coordinator's incarnation: it rises at every start, when the counters start again from zero.", nil, nil)
	descRole = prometheus.NewDesc("twopc_coordinator_role",
		"1 for this coordinator's role: single (the only one), leader or follower (of several).", []string{"role"}, nil)
	descTerm = prometheus.NewDesc("twopc_term",
		"The leader's term (with several coordinators, raft's term; alone, the epoch): changes(twopc_term[1h]) counts leader changes.", nil, nil)
	descState = prometheus.NewDesc("twopc_participant_state",
		"1 for the state the coordinator sees each participant in, 0 for the others.", []string{"participant", "state"}, nil)
	descPrepared = prometheus.NewDesc("twopc_participant_prepared",
		"Transactions a participant holds prepared (absent while it is offline).", []string{"participant"}, nil)
	descInFlight = prometheus.NewDesc("twopc_participant_in_flight",
		"Calls from the coordinator to a participant not yet answered.", []string{"participant"}, nil)
	descBytes = prometheus.NewDesc("twopc_participant_bytes_total",
		"XML bodies exchanged with a participant, by direction (sent, received).", []string{"participant", "direction"}, nil)
	descCache = prometheus.NewDesc("twopc_read_cache_total",
		"Gets served from the coordinator's cache of recent writes (hit) or by a participant (miss).", []string{"result"}, nil)
	descLogBytes = prometheus.NewDesc("twopc_txlog_bytes",
		"Size of the transaction log file.", nil, nil)
	descLogCompactions = prometheus.NewDesc("twopc_txlog_compactions_total",
		"Compactions of the transaction log.", nil, nil)
	descLogFsyncs = prometheus.NewDesc("twopc_txlog_fsyncs_total",
		"fsync calls on the transaction log: batches, compactions and its directory.", nil, nil)
	descLogRecords = prometheus.NewDesc("twopc_txlog_records_total",
		"Records written to the transaction log.", nil, nil)
)

// statusCollector reads the coordinator's Status at every scrape.
type statusCollector struct {
	status func(context.Context) coordinator.Status
}

func (statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTransactions, descInDoubt, descActive, descEpoch, descRole, descTerm, descState, descPrepared,
		descInFlight, descBytes, descCache, descLogBytes, descLogCompactions, descLogFsyncs, descLogRecords} {
		ch <- d
	}
}

func (sc statusCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	st := sc.status(ctx)
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(descTransactions, st.Committed, "committed")
	counter(descTransactions, st.Aborted, "aborted")
	gauge(descInDoubt, float64(st.InDoubt))
	gauge(descActive, float64(st.Active))
	gauge(descEpoch, float64(st.Epoch))
	gauge(descTerm, float64(st.Term))
	for _, r := range []string{"single", "leader", "follower"} {
		v := 0.0
		if st.Role == r {
			v = 1
		}
		gauge(descRole, v, r)
	}
	counter(descCache, st.CacheHits, "hit")
	counter(descCache, st.CacheMisses, "miss")
	for _, p := range st.Participants {
		for _, s := range participantStates {
			gauge(descState, oneIf(p.State == s), p.Name, s)
		}
		if !slices.Contains(participantStates, p.State) {
			gauge(descState, 1, p.Name, p.State) // a state this package does not know yet
		}
		if p.State != coordinator.StateOffline {
			gauge(descPrepared, float64(p.Prepared), p.Name)
		}
		gauge(descInFlight, float64(p.InFlight), p.Name)
		counter(descBytes, uint64(p.BytesSent), p.Name, "sent")
		counter(descBytes, uint64(p.BytesReceived), p.Name, "received")
	}
	if l := st.Log; l != nil {
		gauge(descLogBytes, float64(l.Bytes))
		counter(descLogCompactions, l.Compactions)
		counter(descLogFsyncs, l.Fsyncs)
		counter(descLogRecords, l.Records)
	}
}

func oneIf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
