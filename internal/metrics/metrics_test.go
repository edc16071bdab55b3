package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twopc/twopc/coordinator"
	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/participant"
	"github.com/twopc/twopc/txlog"
)

// scrape fetches h's answer and parses it as Prometheus does.
func scrape(t *testing.T, h http.Handler) Families {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("HTTP %d, %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	f, err := Parse(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// want checks one sample; absent means it must not be there.
type want struct {
	name   string
	labels []string
	value  float64
	absent bool
}

func check(t *testing.T, f Families, ws []want) {
	t.Helper()
	for _, w := range ws {
		v, ok := f.Value(w.name, w.labels...)
		switch {
		case w.absent && ok:
			t.Errorf("%s%v = %v, want no such sample", w.name, w.labels, v)
		case !w.absent && !ok:
			t.Errorf("%s%v: no such sample", w.name, w.labels)
		case !w.absent && v != w.value:
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, v, w.value)
		}
	}
}

func TestCoordinatorMetrics(t *testing.T) {
	m := NewCoordinator()
	st := coordinator.Status{
		Epoch: 4, Committed: 7, Aborted: 2, InDoubt: 1, Active: 3, CacheHits: 5, CacheMisses: 6,
		Role: "leader", Leader: "c2", Term: 4,
		Participants: []coordinator.ParticipantStatus{
			{Name: "p1", State: coordinator.StateActive, Prepared: 2, InFlight: 1, BytesSent: 100, BytesReceived: 50},
			{Name: "p2", State: coordinator.StateOffline},
		},
		Log: &txlog.Stats{Fsyncs: 11, Records: 22, Compactions: 1, Bytes: 4096},
	}
	scrapes := 0
	m.Watch(func(context.Context) coordinator.Status { scrapes++; return st })
	m.ObserveCall(rpc.CallInfo{Method: "put", Duration: time.Millisecond})
	m.ObserveCall(rpc.CallInfo{Method: "put", Code: rpc.Unavailable, Duration: time.Millisecond})
	m.ObserveCall(rpc.CallInfo{Code: rpc.MethodNotFound})
	m.Phase(coordinator.PhasePrepare, time.Millisecond)
	m.ObserveFsync(time.Millisecond)
	m.ObserveFsync(time.Millisecond)

	f := scrape(t, m.Handler())
	check(t, f, []want{
		{name: "twopc_transactions_total", labels: []string{"outcome", "committed"}, value: 7},
		{name: "twopc_transactions_total", labels: []string{"outcome", "aborted"}, value: 2},
		{name: "twopc_transactions_in_doubt", value: 1},
		{name: "twopc_transactions_active", value: 3},
		{name: "twopc_epoch", value: 4},
		{name: "twopc_term", value: 4},
		{name: "twopc_coordinator_role", labels: []string{"role", "leader"}, value: 1},
		{name: "twopc_coordinator_role", labels: []string{"role", "follower"}, value: 0},
		{name: "twopc_read_cache_total", labels: []string{"result", "miss"}, value: 6},
		{name: "twopc_participant_state", labels: []string{"participant", "p1", "state", "active"}, value: 1},
		{name: "twopc_participant_state", labels: []string{"participant", "p1", "state", "offline"}, value: 0},
		{name: "twopc_participant_state", labels: []string{"participant", "p2", "state", "offline"}, value: 1},
		{name: "twopc_participant_state", labels: []string{"participant", "p2", "state", "active"}, value: 0},
		{name: "twopc_participant_prepared", labels: []string{"participant", "p1"}, value: 2},
		{name: "twopc_participant_prepared", labels: []string{"participant", "p2"}, absent: true},
		{name: "twopc_participant_bytes_total", labels: []string{"participant", "p1", "direction", "sent"}, value: 100},
		{name: "twopc_txlog_bytes", value: 4096},
		{name: "twopc_txlog_compactions_total", value: 1},
		{name: "twopc_txlog_fsyncs_total", value: 11},
		{name: "twopc_rpc_calls_total", labels: []string{"method", "put", "code", "ok"}, value: 1},
		{name: "twopc_rpc_calls_total", labels: []string{"method", "put", "code", "3"}, value: 1},
		{name: "twopc_rpc_calls_total", labels: []string{"method", "other", "code", "-32601"}, value: 1},
		{name: "twopc_rpc_call_duration_seconds", labels: []string{"method", "put"}, value: 2},
		{name: "twopc_phase_duration_seconds", labels: []string{"phase", "prepare"}, value: 1},
		{name: "twopc_phase_duration_seconds", labels: []string{"phase", "commit"}, value: 0},
		{name: "twopc_txlog_fsync_duration_seconds", value: 2},
		{name: "twopc_sqlite_commit_duration_seconds", absent: true}, // a participant's
	})
	if _, ok := f.Value("process_start_time_seconds"); !ok {
		t.Error("no process_start_time_seconds: a restart would go unnoticed")
	}
	if scrapes != 1 {
		t.Errorf("status read %d times in one scrape, want 1", scrapes)
	}
	// Status is read anew at every scrape.
	st.Committed, st.Participants[1].State = 8, coordinator.StateActive
	check(t, scrape(t, m.Handler()), []want{
		{name: "twopc_transactions_total", labels: []string{"outcome", "committed"}, value: 8},
		{name: "twopc_participant_state", labels: []string{"participant", "p2", "state", "offline"}, value: 0},
		{name: "twopc_participant_prepared", labels: []string{"participant", "p2"}, value: 0},
	})
}

func TestParticipantMetrics(t *testing.T) {
	m := NewParticipant()
	m.Watch(func() participant.Stats {
		return participant.Stats{Batches: 9, Fsyncs: 12, Prepares: 3, Commits: 2, Aborts: 1, Prepared: 1, StaleTermRefusals: 4, Term: 7, KVCacheHits: 11, KVQueries: 5}
	})
	m.ObserveCommit(time.Millisecond)
	m.ObserveBatch(time.Millisecond, true)
	m.ObserveBatch(time.Millisecond, false)
	m.ObserveBatch(2*time.Millisecond, false)
	m.ObserveApplyStep(3 * time.Millisecond)
	m.ObserveApplyStep(4 * time.Millisecond)
	m.ObserveCall(rpc.CallInfo{Method: "batch"})
	check(t, scrape(t, m.Handler()), []want{
		{name: "twopc_store_prepared", value: 1},
		{name: "twopc_store_batches_total", value: 9},
		{name: "twopc_store_fsyncs_total", value: 12},
		{name: "twopc_store_requests_total", labels: []string{"kind", "prepare"}, value: 3},
		{name: "twopc_store_requests_total", labels: []string{"kind", "commit"}, value: 2},
		{name: "twopc_store_requests_total", labels: []string{"kind", "abort"}, value: 1},
		{name: "twopc_store_stale_term_refusals_total", value: 4},
		{name: "twopc_store_term", value: 7},
		{name: "twopc_store_kv_reads_total", labels: []string{"source", "cache"}, value: 11},
		{name: "twopc_store_kv_reads_total", labels: []string{"source", "sqlite"}, value: 5},
		{name: "twopc_sqlite_commit_duration_seconds", value: 1},
		{name: "twopc_store_batch_duration_seconds", labels: []string{"apply", "yes"}, value: 1},
		{name: "twopc_store_batch_duration_seconds", labels: []string{"apply", "no"}, value: 2},
		{name: "twopc_store_apply_step_duration_seconds", value: 2},
		{name: "twopc_rpc_calls_total", labels: []string{"method", "batch", "code", "ok"}, value: 1},
		{name: "twopc_transactions_total", absent: true}, // a coordinator's
	})
}
