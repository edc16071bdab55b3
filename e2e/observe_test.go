package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twopc/twopc/internal/metrics"
)

// base is a server's root URL, from its XML-RPC URL.
func base(rpcURL string) string { return strings.TrimSuffix(rpcURL, "/RPC2") }

// fetch GETs url and returns the status code and body.
func fetch(url string) (int, string, error) {
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// scrape reads a server's /metrics with the Prometheus text parser.
func scrape(t *testing.T, rpcURL string) metrics.Families {
	t.Helper()
	code, body, err := fetch(base(rpcURL) + "/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("scrape %s: %d %v", rpcURL, code, err)
	}
	f, err := metrics.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("scrape %s: %v", rpcURL, err)
	}
	return f
}

// sample is one series of a scrape: its name and labels.
type sample struct {
	name   string
	labels []string
}

func (s sample) String() string { return fmt.Sprintf("%s%v", s.name, s.labels) }

func (s sample) in(f metrics.Families) float64 {
	v, _ := f.Value(s.name, s.labels...)
	return v
}

// A put moves the counters and histograms of the coordinator and of every
// participant, as a scraper sees them.
func TestMetricsMoveAfterAPut(t *testing.T) {
	cl := newCluster(t)
	coord := []sample{
		{"twopc_rpc_calls_total", []string{"method", "put", "code", "ok"}},
		{"twopc_rpc_call_duration_seconds", []string{"method", "put"}},
		{"twopc_transactions_total", []string{"outcome", "committed"}},
		{"twopc_phase_duration_seconds", []string{"phase", "prepare"}},
		{"twopc_phase_duration_seconds", []string{"phase", "commit"}},
		{"twopc_txlog_fsync_duration_seconds", nil},
		{"twopc_txlog_records_total", nil},
	}
	part := []sample{
		{"twopc_rpc_calls_total", []string{"method", "batch", "code", "ok"}},
		{"twopc_store_requests_total", []string{"kind", "prepare"}},
		{"twopc_store_requests_total", []string{"kind", "commit"}},
		{"twopc_sqlite_commit_duration_seconds", nil},
	}
	before := scrape(t, cl.CoordinatorURL())
	partBefore := scrape(t, cl.URL("p1"))
	const key, value = "metrics-key-4e1f", "metrics-value-9b2c"
	if _, err := call(cl.CoordinatorURL(), nil, "put", key, value); err != nil {
		t.Fatal(err)
	}
	// The commit phase ends in the background, after the put returned.
	eventually(t, 10*time.Second, "every counter moved", func() error {
		after, partAfter := scrape(t, cl.CoordinatorURL()), scrape(t, cl.URL("p1"))
		for _, s := range coord {
			if s.in(after) <= s.in(before) {
				return fmt.Errorf("coordinator's %v stayed at %v", s, s.in(after))
			}
		}
		for _, s := range part {
			if s.in(partAfter) <= s.in(partBefore) {
				return fmt.Errorf("p1's %v stayed at %v", s, s.in(partAfter))
			}
		}
		return nil
	})
	after := scrape(t, cl.CoordinatorURL())
	for _, s := range []sample{
		{"twopc_transactions_total", []string{"outcome", "committed"}},
		{"twopc_rpc_calls_total", []string{"method", "put", "code", "ok"}},
	} {
		if d := s.in(after) - s.in(before); d != 1 {
			t.Errorf("%v moved by %v after one put, want 1", s, d)
		}
	}
	for _, p := range []string{"p1", "p2", "p3"} {
		if v, ok := after.Value("twopc_participant_state", "participant", p, "state", "active"); !ok || v != 1 {
			t.Errorf("%s not active in the metrics: %v %v", p, v, ok)
		}
	}
	// No server's metrics show a key or a value.
	for _, u := range append([]string{cl.CoordinatorURL()}, cl.ParticipantURLs()...) {
		_, body, err := fetch(base(u) + "/metrics")
		if err != nil || strings.Contains(body, key) || strings.Contains(body, value) {
			t.Errorf("%s/metrics shows the key or the value (%v)", base(u), err)
		}
	}
	// A fault is counted by its code.
	if _, err := call(cl.CoordinatorURL(), nil, "get", "missing"); err == nil {
		t.Fatal("get of a missing key succeeded")
	}
	if v := (sample{"twopc_rpc_calls_total", []string{"method", "get", "code", "1"}}).in(scrape(t, cl.CoordinatorURL())); v != 1 {
		t.Errorf("get faults with code 1: %v, want 1", v)
	}
}

// readyz turns 503, naming the participant, while one is killed with
// SIGKILL, and 200 again once it is back; healthz stays 200 throughout.
func TestReadyzFollowsAParticipant(t *testing.T) {
	cl := newCluster(t)
	ready := func(url string) (int, string) {
		code, body, err := fetch(base(url) + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		return code, body
	}
	if code, body := ready(cl.CoordinatorURL()); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("coordinator readyz with everything up: %d %q", code, body)
	}
	for _, u := range cl.ParticipantURLs() {
		if code, body := ready(u); code != http.StatusOK {
			t.Fatalf("participant %s readyz: %d %q", u, code, body)
		}
	}
	kill(t, cl, "p2")
	eventually(t, 10*time.Second, "coordinator unready", func() error {
		code, body := ready(cl.CoordinatorURL())
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "participant p2 ("+base(cl.URL("p2"))) || !strings.Contains(body, "offline") {
			return fmt.Errorf("%d %q", code, body)
		}
		return nil
	})
	if code, body, err := fetch(base(cl.CoordinatorURL()) + "/healthz"); err != nil || code != http.StatusOK || body != "ok\n" {
		t.Errorf("healthz while not ready: %d %q %v", code, body, err)
	}
	start(t, cl, "p2")
	eventually(t, 30*time.Second, "coordinator ready again", func() error {
		if code, body := ready(cl.CoordinatorURL()); code != http.StatusOK {
			return fmt.Errorf("%d %q", code, body)
		}
		return nil
	})
}
