package peer

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/participant"
	"github.com/twopc/twopc/protocol"
)

// serve puts a store behind a real XML-RPC server and returns a Client.
func serve(t *testing.T) (*participant.Store, *Client, string) {
	t.Helper()
	s := newStore(t)
	srv := rpc.NewServer(rpc.DefaultLimits(), nil)
	Register(srv, s)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return s, NewClient(hs.URL+"/RPC2", nil, 1), hs.URL + "/RPC2"
}

// The wire format carries every field both ways.
func TestClientRoundTrip(t *testing.T) {
	_, c, _ := serve(t)
	bin := protocol.Value{Data: []byte{0, 1, 255}, Binary: true}
	tx := &protocol.Txn{Success: []protocol.Op{{Kind: protocol.OpPut, Key: "k", Value: bin}, {Kind: protocol.OpPut, Key: "s", Value: protocol.Value{Data: []byte("")}}}}
	v, err := c.Prepare(ctx, "1.1", tx)
	if err != nil || v.Kind != protocol.VoteYes || !v.Succeeded || fmt.Sprint(v.Results) != "[put v1 put v1]" {
		t.Fatalf("prepare: %+v %v", v, err)
	}
	ks, err := c.Read(ctx, "k", "s", "none")
	if err != nil || len(ks) != 3 {
		t.Fatalf("read while prepared: %+v %v", ks, err)
	}
	if k := ks[0]; k.Entry.Found || k.Pending != "1.1" || !k.Next.Found || k.Next.Version != 1 || !k.Next.Value.Binary || string(k.Next.Value.Data) != "\x00\x01\xff" {
		t.Fatalf("read while prepared: %+v", k)
	}
	v, err = c.Prepare(ctx, "1.2", &protocol.Txn{Success: []protocol.Op{{Kind: protocol.OpDelete, Key: "k"}}})
	if err != nil || v.Kind != protocol.VoteNo || !v.Conflict || v.Reason == "" {
		t.Fatalf("conflicting prepare: %+v %v", v, err)
	}
	pts, err := c.PreparedTxs(ctx)
	if err != nil || len(pts) != 1 || pts[0].TxID != "1.1" || fmt.Sprint(pts[0].Keys) != "[k s]" || pts[0].Since.IsZero() {
		t.Fatalf("prepared: %+v %v", pts, err)
	}
	if err := c.Commit(ctx, "1.1"); err != nil {
		t.Fatal(err)
	}
	ks, err = c.Read(ctx, "k")
	if k := ks[0]; err != nil || !k.Entry.Found || !k.Entry.Value.Binary || string(k.Entry.Value.Data) != "\x00\x01\xff" || k.Pending != "" {
		t.Fatalf("read after commit: %+v %v", ks, err)
	}
	// Compares of every target and a failure branch with a get.
	cas := &protocol.Txn{
		Compares: []protocol.Compare{
			{Key: "k", Target: protocol.TargetValue, Op: protocol.Equal, Value: bin},
			{Key: "k", Target: protocol.TargetVersion, Op: protocol.Greater, Version: 5},
			{Key: "s", Target: protocol.TargetExists, Op: protocol.NotEqual, Exists: false},
		},
		Success: []protocol.Op{{Kind: protocol.OpDelete, Key: "k"}},
		Failure: []protocol.Op{{Kind: protocol.OpGet, Key: "k"}, {Kind: protocol.OpGet, Key: "none"}},
	}
	v, err = c.Prepare(ctx, "1.3", cas)
	if err != nil || v.Kind != protocol.VoteReadOnly || v.Succeeded || fmt.Sprint(v.Results) != `[get v1 "\x00\x01\xff" get missing]` || !v.Results[0].Value.Binary {
		t.Fatalf("failed compare: %+v %v", v, err)
	}
	cas.Compares = cas.Compares[:1]
	v, err = c.Prepare(ctx, "1.4", cas)
	if err != nil || v.Kind != protocol.VoteYes || fmt.Sprint(v.Results) != "[delete existed=true]" {
		t.Fatalf("delete prepare: %+v %v", v, err)
	}
	if err := c.Abort(ctx, "1.4"); err != nil {
		t.Fatal(err)
	}
	// A per-call error comes back as that call's error.
	if err := c.Commit(ctx, "1.4"); err == nil {
		t.Fatal("commit of an aborted transaction succeeded")
	}
	d, err := c.Digest(ctx)
	if err != nil || d.Keys != 2 || d.Prepared != 0 || len(d.Hash) != 64 {
		t.Fatalf("digest: %+v %v", d, err)
	}
}

// Concurrent calls share requests and still each get their own answer.
func TestClientConcurrentCalls(t *testing.T) {
	s, c, _ := serve(t)
	const n = 64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("1.%d", i)
			v, err := c.Prepare(ctx, id, put(fmt.Sprint("k", i%(n/2)), "v"))
			if err != nil {
				t.Error(err)
				return
			}
			if v.Kind == protocol.VoteYes {
				if err := c.Commit(ctx, id); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	// Two writers per key: both commit if they ran one after the other,
	// one gets a conflict if they overlapped; never neither.
	if st.Commits < n/2 || st.Commits > n {
		t.Fatalf("commits %d, want between %d and %d", st.Commits, n/2, n)
	}
	if st.Prepared != 0 {
		t.Fatalf("%d transactions left prepared", st.Prepared)
	}
	t.Logf("%d prepares and %d commits in %d SQLite transactions", st.Prepares, st.Commits, st.Batches)
}

// Malformed batch entries get a fault of their own; the rest still run.
func TestBatchMalformedEntries(t *testing.T) {
	_, _, url := serve(t)
	c := rpc.NewClient(url, nil).WithHeader(TermHeader, "1")
	good := wireCall(t, protocol.Call{Kind: protocol.MsgPrepare, TxID: "1.1", Txn: put("k", "v")})
	res, err := c.Call(ctx, "batch", []any{
		good,
		[]any{"explode", "1.1"},
		[]any{"commit"},
		[]any{"prepare", "1.2", []any{[]any{}, []any{[]any{"upsert", "k2", "v"}}, []any{}}},
		"not an array",
		[]any{"prepare", "1.3", []any{[]any{[]any{"k", "version", "~", int64(1)}}, []any{}, []any{}}},
		[]any{"prepare", "1.4", []any{[]any{[]any{"k", "exists", "==", "yes"}}, []any{}, []any{}}},
		[]any{"prepare", "1.5", []any{[]any{}, []any{[]any{"put", "k"}}, []any{}}},
		[]any{"read", "k"},
		[]any{"commit", "1.1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := res.([]any)
	if len(out) != 10 {
		t.Fatalf("%d replies for 10 calls", len(out))
	}
	for i := 1; i <= 8; i++ {
		f, ok := out[i].(map[string]any)
		if !ok || f["faultCode"] != int64(rpc.InvalidParams) {
			t.Errorf("entry %d: %v, want an invalid-params fault", i+1, out[i])
		}
	}
	if v := out[0].([]any); v[0] != "yes" || out[9] != true {
		t.Fatalf("valid entries: %v %v", out[0], out[9])
	}
	_, err = c.Call(ctx, "batch", "x")
	var f *rpc.Fault
	if !errors.As(err, &f) || f.Code != rpc.InvalidParams {
		t.Fatalf("batch of a string: %v", err)
	}
}
