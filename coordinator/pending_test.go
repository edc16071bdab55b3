package coordinator

import (
	"github.com/twopc/twopc/protocol"
	"strings"
	"testing"
	"time"
)

func TestPendingTxs(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	txs := []TxView{
		{ID: "2.7", Keys: []string{"a"}, State: "committed", Since: ago(3 * time.Second)},
		{ID: "2.8", Keys: []string{"b"}, State: "preparing", Since: ago(time.Second)},
		{ID: "2.9", Keys: []string{"c"}, State: "committed", Since: ago(2 * time.Second)},
		{ID: "1.4", Keys: []string{"d"}, State: "resolving", Since: ago(time.Minute)},
	}
	names := []string{"p1", "p2", "p3"}
	prepared := map[string][]protocol.PreparedTx{ // p2 did not answer
		"p1": {{TxID: "2.7", Keys: []string{"a"}, Since: ago(3 * time.Second)}, {TxID: "2.8", Keys: []string{"b"}}, {TxID: "1.1", Keys: []string{"e"}, Since: ago(time.Hour)}},
		"p3": {{TxID: "2.8", Keys: []string{"b"}}, {TxID: "0.5", Keys: []string{"f"}}},
	}
	got := pendingTxs(now, txs, names, prepared)
	want := []struct {
		id, state, age, at, waits string
	}{
		{"1.1", "unknown", "1h0m0s", "p1", "resolvers, which ask the coordinator"},
		{"1.4", "resolving", "1m0s", "", "still to answer or act: p2 (offline)"},
		{"2.7", "committed", "3s", "p1", "commit acknowledgement from p1, p2 (offline)"},
		{"2.9", "committed", "2s", "", "commit acknowledgement from p2 (offline)"},
		{"2.8", "preparing", "1s", "p1,p3", "votes of p2"},
		{"0.5", "unknown", "0s", "p3", "presumed abort"}, // reloaded at a restart: no age
	}
	if len(got) != len(want) {
		t.Fatalf("got %d transactions, want %d: %+v", len(got), len(want), got)
	}
	if k := got[0].Keys; len(k) != 1 || k[0] != "e" {
		t.Errorf("keys of 1.1, known only at p1: %q", k)
	}
	for i, w := range want {
		g := got[i]
		if g.ID != w.id || g.State != w.state || g.Age.String() != w.age || strings.Join(g.PreparedAt, ",") != w.at || !strings.Contains(g.WaitsFor, w.waits) {
			t.Errorf("%d: got %s %s age %s at %v waits for %q\nwant %+v", i, g.ID, g.State, g.Age, g.PreparedAt, g.WaitsFor, w)
		}
	}

	// Once every participant answers and holds nothing, a committed one
	// waits only for its END record.
	all := map[string][]protocol.PreparedTx{"p1": nil, "p2": nil, "p3": nil}
	got = pendingTxs(now, txs[:1], names, all)
	if len(got) != 1 || !strings.Contains(got[0].WaitsFor, "END record") {
		t.Errorf("all acknowledged: %+v", got)
	}
}

// What only participants held when they were asked, but the coordinator
// finished meanwhile, is not shown as unknown.
func TestWithoutFinished(t *testing.T) {
	txs := []PendingTx{{ID: "1.1", State: "unknown"}, {ID: "1.2", State: "unknown"}, {ID: "1.3", State: "committed"}}
	before := []TxView{{ID: "1.1"}, {ID: "1.3"}}
	after := []TxView{{ID: "1.3"}}
	got := withoutFinished(txs, before, after)
	if len(got) != 2 || got[0].ID != "1.2" || got[1].ID != "1.3" {
		t.Errorf("%+v, want 1.2 (never the coordinator's) and 1.3", got)
	}
}
