package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twopc/twopc/coordinator"
	"github.com/twopc/twopc/txlog"
)

// fakeCoordinator is what the page reads, fixed by the test.
type fakeCoordinator struct {
	st      coordinator.Status
	pending []coordinator.PendingTx
}

func (f *fakeCoordinator) Status(context.Context) coordinator.Status { return f.st }
func (f *fakeCoordinator) Pending(context.Context) []coordinator.PendingTx {
	return f.pending
}

func TestPageShowsAParticipantDown(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	fc := &fakeCoordinator{
		st: coordinator.Status{Epoch: 3, Committed: 40, Aborted: 2, InDoubt: 1,
			Participants: []coordinator.ParticipantStatus{
				{Name: "p1", URL: "http://127.0.0.1:1/RPC2", State: coordinator.StateActive, Prepared: 0},
				{Name: "p2", URL: "http://127.0.0.1:2/RPC2", State: coordinator.StateOffline},
			},
			Log: &txlog.Stats{Bytes: 3 << 10, Records: 9}},
		pending: []coordinator.PendingTx{{ID: "3.17", Keys: []string{"<b>k</b>"}, State: "committed", Age: 90 * time.Second,
			Silent: []string{"p2"}, WaitsFor: "commit acknowledgement from p2 (offline)"}},
	}
	clock := now
	h := NewPage(PageConfig{Status: fc.Status, Pending: fc.Pending, Started: now.Add(-time.Hour), Version: "v9", Now: func() time.Time { return clock }})

	code, body, hdr := do(t, h, "GET", "/")
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("%d %v", code, hdr)
	}
	for _, want := range []string{
		`<meta http-equiv="refresh" content="2">`,
		`data-ready="false"`, "participant p2 (http://127.0.0.1:2/RPC2) is offline",
		`<tr data-participant="p2">`, `class="state state-offline">offline<`,
		`<tr data-txid="3.17">`, "&#34;&lt;b&gt;k&lt;/b&gt;&#34;", // the key, quoted and escaped
		">1m30s<", "commit acknowledgement from p2 (offline)",
		`<p id="leader">`, "3.0 KiB", "epoch 3", "up 1h0m0s",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<b>k</b>") || strings.Contains(body, "<script") {
		t.Error("the page carries unescaped input, or a script")
	}
	// A rate shows from the second view on.
	fc.st.Committed = 60
	clock = now.Add(10 * time.Second)
	_, body, _ = do(t, h, "GET", "/")
	if !strings.Contains(body, "2.0/s") {
		t.Errorf("20 commits in 10s: no rate of 2.0/s on the second view")
	}
}

func TestPageWhenAllIsWell(t *testing.T) {
	fc := &fakeCoordinator{st: coordinator.Status{Participants: []coordinator.ParticipantStatus{{Name: "p1", State: coordinator.StateActive}}}}
	h := NewPage(PageConfig{Status: fc.Status, Pending: fc.Pending})
	_, body, _ := do(t, h, "GET", "/")
	for _, want := range []string{`data-ready="true"`, `<p id="pending">None`, `class="state state-active">active<`, `<p id="txlog">Not kept`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
