package coordinator

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/twopc/twopc/internal/rpc"
)

// serve exposes the cluster's coordinator over real XML-RPC.
func (cl *cluster) serve(lim Limits) *rpc.Client {
	srv := rpc.NewServer(rpc.DefaultLimits(), nil)
	Register(srv, cl.c, lim)
	hs := httptest.NewServer(srv)
	cl.t.Cleanup(hs.Close)
	return rpc.NewClient(hs.URL+"/RPC2", nil)
}

func TestPublicAPI(t *testing.T) {
	cl := newCluster(t)
	c := cl.serve(Limits{MaxKeyBytes: 8, MaxValueBytes: 16})
	mustCall := func(method string, args ...any) any {
		t.Helper()
		res, err := c.Call(bg, method, args...)
		if err != nil {
			t.Fatalf("%s%v: %v", method, args, err)
		}
		return res
	}
	if mustCall("put", "s", "text") != true || mustCall("get", "s") != "text" {
		t.Fatal("string round trip")
	}
	// A binary value comes back as binary, byte-exact.
	mustCall("put", "b", []byte{0, 255, 10})
	if got, ok := mustCall("get", "b").([]byte); !ok || string(got) != "\x00\xff\n" {
		t.Fatalf("binary round trip: %#v", got)
	}
	if mustCall("put", "e", "") != true || mustCall("get", "e") != "" {
		t.Fatal("empty value")
	}
	if mustCall("delete", "s") != true || mustCall("delete", "s") != false {
		t.Fatal("delete must report whether the key existed")
	}
	st := mustCall("status").(map[string]any)
	if st["committed"] != int64(0) && st["in_doubt"] == nil {
		t.Fatalf("status: %v", st)
	}
	if ps := st["participants"].([]any); len(ps) != 3 || ps[0].(map[string]any)["state"] != "active" {
		t.Fatalf("status participants: %v", ps)
	}

	for _, tc := range []struct {
		method string
		args   []any
		code   int
	}{
		{"get", []any{"s"}, rpc.NotFound},
		{"get", []any{""}, rpc.InvalidParams},
		{"put", []any{"", "v"}, rpc.InvalidParams},
		{"put", []any{"k"}, rpc.InvalidParams},
		{"put", []any{"k", int64(3)}, rpc.InvalidParams},
		{"put", []any{int64(1), "v"}, rpc.InvalidParams},
		{"put", []any{"123456789", "v"}, rpc.TooLarge},
		{"put", []any{"k", strings.Repeat("x", 17)}, rpc.TooLarge},
		{"put", []any{"k", make([]byte, 17)}, rpc.TooLarge},
		{"delete", []any{}, rpc.InvalidParams},
		{"status", []any{"x"}, rpc.InvalidParams},
		{"nosuch", nil, rpc.MethodNotFound},
	} {
		_, err := c.Call(bg, tc.method, tc.args...)
		var f *rpc.Fault
		if !errors.As(err, &f) || f.Code != tc.code {
			t.Errorf("%s%v: %v, want fault %d", tc.method, tc.args, err, tc.code)
		}
	}
	// Nothing the faults touched was written.
	for _, k := range []string{"k", "123456789"} {
		if _, err := c.Call(bg, "get", k); err == nil {
			t.Errorf("%q written by a failed call", k)
		}
	}
	cl.settle()
	cl.check(map[string]string{"s": ""})
}

// A participant that is down while a put prepares gives fault 3, and a
// write on a key locked by a stale prepared transaction gives fault 2.
func TestFaultCodesOfAbortedWrites(t *testing.T) {
	cl := newCluster(t)
	c := cl.serve(DefaultLimits())
	cl.parts[0].kill()
	_, err := c.Call(bg, "put", "k", "v")
	var f *rpc.Fault
	if !errors.As(err, &f) || f.Code != rpc.Unavailable {
		t.Fatalf("put with p1 down: %v, want fault 3", err)
	}
	cl.parts[0].restart(t)
	// A transaction of an unknown coordinator holds "k" at p2.
	st, _ := cl.parts[1].get()
	if v, err := st.Prepare(bg, "0.1", cl.parts[1].writeOf("k")); err != nil || !v.Yes {
		t.Fatal(v, err)
	}
	_, err = c.Call(bg, "put", "k", "v")
	if !errors.As(err, &f) || f.Code != rpc.Conflict {
		t.Fatalf("put on a locked key: %v, want fault 2", err)
	}
	cl.settle() // the participant's resolver clears it: presumed abort
	cl.check(map[string]string{"k": ""})
	if _, err := c.Call(bg, "put", "k", "v"); err != nil {
		t.Fatal(err)
	}
}
