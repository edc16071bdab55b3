package web

import (
	"context"
	"errors"
	"github.com/twopc/twopc/protocol"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twopc/twopc/coordinator"
	"github.com/twopc/twopc/txlog"
)

// fakeCoordinator is what the page reads, fixed by the test.
type fakeCoordinator struct {
	st  coordinator.Status
	txs []coordinator.TxView
}

func (f *fakeCoordinator) Status(context.Context) coordinator.Status { return f.st }
func (f *fakeCoordinator) Transactions() []coordinator.TxView        { return f.txs }

// holder is a participant that only answers what it holds prepared.
type holder struct {
	coordinator.Participant // nil: the page calls nothing else
	pts                     []protocol.PreparedTx
	down                    bool
}

func (h holder) PreparedTxs(context.Context) ([]protocol.PreparedTx, error) {
	if h.down {
		return nil, errors.New("connection refused")
	}
	return h.pts, nil
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
		txs: []coordinator.TxView{{ID: "3.17", Keys: []string{"<b>k</b>"}, State: "committed", Since: now.Add(-90 * time.Second)}},
	}
	clock := now
	h := NewPage(PageConfig{Status: fc.Status, Transactions: fc.Transactions, Started: now.Add(-time.Hour), Version: "v9", Now: func() time.Time { return clock },
		Members: []coordinator.Member{{Name: "p1", Participant: holder{}}, {Name: "p2", Participant: holder{down: true}}}})

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
	h := NewPage(PageConfig{Status: fc.Status, Transactions: fc.Transactions, Members: []coordinator.Member{{Name: "p1", Participant: holder{}}}})
	_, body, _ := do(t, h, "GET", "/")
	for _, want := range []string{`data-ready="true"`, `<p id="pending">None`, `class="state state-active">active<`, `<p id="txlog">Not kept`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
