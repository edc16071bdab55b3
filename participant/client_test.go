package participant

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"

	"github.com/twopc/twopc/internal/rpc"
)

// serve puts a store behind a real XML-RPC server and returns a Client.
func serve(t *testing.T) (*Store, *Client, string) {
	t.Helper()
	s := open(t, filepath.Join(t.TempDir(), "p.db"))
	srv := rpc.NewServer(rpc.DefaultLimits(), nil)
	Register(srv, s)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return s, NewClient(hs.URL+"/RPC2", nil), hs.URL + "/RPC2"
}

// The wire format carries every field both ways.
func TestClientRoundTrip(t *testing.T) {
	_, c, _ := serve(t)
	bin := Write{Key: "k", Op: OpPut, Value: Value{Data: []byte{0, 1, 255}, Binary: true}}
	v, err := c.Prepare(ctx, "1.1", bin)
	if err != nil || !v.Yes || v.Existed {
		t.Fatalf("prepare: %+v %v", v, err)
	}
	r, err := c.Read(ctx, "k")
	if err != nil || r.Found || r.Pending != "1.1" || r.Write.Op != OpPut || !r.Write.Value.Binary || string(r.Write.Value.Data) != "\x00\x01\xff" {
		t.Fatalf("read while prepared: %+v %v", r, err)
	}
	v, err = c.Prepare(ctx, "1.2", Write{Key: "k", Op: OpDelete})
	if err != nil || v.Yes || !v.Conflict || v.Reason == "" {
		t.Fatalf("conflicting prepare: %+v %v", v, err)
	}
	if err := c.Commit(ctx, "1.1"); err != nil {
		t.Fatal(err)
	}
	r, err = c.Read(ctx, "k")
	if err != nil || !r.Found || !r.Value.Binary || string(r.Value.Data) != "\x00\x01\xff" || r.Pending != "" {
		t.Fatalf("read after commit: %+v %v", r, err)
	}
	if v, _ = c.Prepare(ctx, "1.3", Write{Key: "k", Op: OpDelete}); !v.Existed {
		t.Fatalf("delete prepare: %+v", v)
	}
	if err := c.Abort(ctx, "1.3"); err != nil {
		t.Fatal(err)
	}
	// A per-call error comes back as that call's error.
	if err := c.Commit(ctx, "1.3"); err == nil {
		t.Fatal("commit of an aborted transaction succeeded")
	}
	pts, err := c.PreparedTxs(ctx)
	if err != nil || len(pts) != 0 {
		t.Fatalf("prepared: %v %v", pts, err)
	}
	d, err := c.Digest(ctx)
	if err != nil || d.Keys != 1 || d.Prepared != 0 || len(d.Hash) != 64 {
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
			if v.Yes {
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
	c := rpc.NewClient(url, nil)
	res, err := c.Call(ctx, "batch", []any{
		[]any{"prepare", "1.1", "k", "put", "v"},
		[]any{"explode", "1.1"},
		[]any{"commit"},
		[]any{"prepare", "1.2", "k2", "upsert", "v"},
		"not an array",
		[]any{"commit", "1.1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := res.([]any)
	if len(out) != 6 {
		t.Fatalf("%d replies for 6 calls", len(out))
	}
	for _, i := range []int{1, 2, 3, 4} {
		f, ok := out[i].(map[string]any)
		if !ok || f["faultCode"] != int64(rpc.InvalidParams) {
			t.Errorf("entry %d: %v, want an invalid-params fault", i+1, out[i])
		}
	}
	if v := out[0].([]any); v[0] != "yes" || out[5] != true {
		t.Fatalf("valid entries: %v %v", out[0], out[5])
	}
	_, err = c.Call(ctx, "batch", "x")
	var f *rpc.Fault
	if !errors.As(err, &f) || f.Code != rpc.InvalidParams {
		t.Fatalf("batch of a string: %v", err)
	}
}
