package peer

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/protocol"
)

// serveTerms puts a store behind a real XML-RPC server and returns a
// client for each term asked (0: none), and the URL.
func serveTerms(t *testing.T, terms ...uint64) ([]*Client, string) {
	t.Helper()
	srv := rpc.NewServer(rpc.DefaultLimits(), nil)
	Register(srv, newStore(t))
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	url := hs.URL + "/RPC2"
	cs := make([]*Client, len(terms))
	for i, term := range terms {
		cs[i] = NewClient(url, nil, term)
	}
	return cs, url
}

func wantStaleTerm(t *testing.T, what string, err error, seen, sent uint64) {
	t.Helper()
	var stale *protocol.StaleTermError
	if !errors.As(err, &stale) || stale.Seen != seen || stale.Sent != sent {
		t.Fatalf("%s: err %v (%T), want a *protocol.StaleTermError, seen %d, sent %d", what, err, err, seen, sent)
	}
}

// Once a participant has heard term 2, every method of a client of term 1
// fails with the typed error, whichever way it travels (batched, async,
// plain call).
func TestStaleTermIsTypedError(t *testing.T) {
	cs, _ := serveTerms(t, 2, 1)
	newer, older := cs[0], cs[1]
	if v, err := newer.Prepare(ctx, "2.1", put("k", "v")); err != nil || v.Kind != protocol.VoteYes {
		t.Fatalf("prepare of term 2: %+v %v", v, err)
	}
	for name, call := range map[string]func() error{
		"prepare":  func() error { _, err := older.Prepare(ctx, "1.1", put("x", "v")); return err },
		"commit":   func() error { return older.Commit(ctx, "2.1") },
		"abort":    func() error { return older.Abort(ctx, "2.1") },
		"read":     func() error { _, err := older.Read(ctx, "k"); return err },
		"prepared": func() error { _, err := older.PreparedTxs(ctx); return err },
		"digest":   func() error { _, err := older.Digest(ctx); return err },
		"scan":     func() error { _, _, err := older.Scan(ctx, "", 10); return err },
		"install": func() error {
			return older.Install(ctx, &protocol.Install{Reset: true, Fence: "1.9"})
		},
		"async commit": func() error {
			done := make(chan error, 1)
			older.Go(protocol.Call{Kind: protocol.MsgCommit, TxID: "2.1"}, time.Time{}, func(r protocol.CallResult) { done <- r.Err })
			return <-done
		},
	} {
		wantStaleTerm(t, name, call(), 2, 1)
	}
	if pts, err := newer.PreparedTxs(ctx); err != nil || len(pts) != 1 || pts[0].TxID != "2.1" {
		t.Fatalf("after the refusals, prepared: %+v %v; want 2.1 alone", pts, err)
	}
	st, err := newer.Stats(ctx)
	if err != nil || st["stale_term_refusals"] < 9 || st["term"] != 2 {
		t.Fatalf("stats %v, %v: want at least 9 refusals, term 2", st, err)
	}
}

// A batch of a stale term is refused whole, reads included: the reply is
// one fault, not an array of results.
func TestStaleBatchRefusedWhole(t *testing.T) {
	cs, url := serveTerms(t, 2)
	if _, err := cs[0].Read(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	old := rpc.NewClient(url, nil).WithHeader(TermHeader, "1")
	_, err := old.Call(ctx, "batch", []any{
		wireCall(t, protocol.Call{Kind: protocol.MsgRead, Keys: []string{"k"}}),
		wireCall(t, protocol.Call{Kind: protocol.MsgPrepare, TxID: "1.1", Txn: put("k", "v")}),
	})
	var f *rpc.Fault
	if !errors.As(err, &f) || f.Code != rpc.StaleTerm {
		t.Fatalf("stale batch: %v, want fault %d", err, rpc.StaleTerm)
	}
}

// Without a term, an operator's reads go through; anything that changes
// data is refused, and so is a term that is not a positive number.
func TestNoTermOnlyReads(t *testing.T) {
	cs, url := serveTerms(t, 3, 0)
	if _, err := cs[0].Prepare(ctx, "3.1", put("k", "v")); err != nil {
		t.Fatal(err)
	}
	none := cs[1]
	if _, err := none.Read(ctx, "k"); err != nil {
		t.Fatalf("read without a term: %v", err)
	}
	if _, err := none.Digest(ctx); err != nil {
		t.Fatalf("digest without a term: %v", err)
	}
	if _, err := none.PreparedTxs(ctx); err != nil {
		t.Fatalf("prepared without a term: %v", err)
	}
	var f *rpc.Fault
	for name, err := range map[string]error{
		"commit":  none.Commit(ctx, "3.1"),
		"install": none.Install(ctx, &protocol.Install{Reset: true, Fence: "3.9"}),
	} {
		if !errors.As(err, &f) || f.Code != rpc.InvalidRequest {
			t.Fatalf("%s without a term: %v, want fault %d", name, err, rpc.InvalidRequest)
		}
	}
	for _, bad := range []string{"0", "-1", "x", "18446744073709551616"} {
		c := rpc.NewClient(url, nil).WithHeader(TermHeader, bad)
		if _, err := c.Call(context.Background(), "digest"); !errors.As(err, &f) || f.Code != rpc.InvalidRequest {
			t.Fatalf("term %q: %v, want fault %d", bad, err, rpc.InvalidRequest)
		}
	}
	if pts, err := cs[0].PreparedTxs(ctx); err != nil || len(pts) != 1 {
		t.Fatalf("3.1 should still be prepared: %+v %v", pts, err)
	}
}
