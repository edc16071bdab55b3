package api

import (
	"context"
	"errors"
	"fmt"
	"github.com/twopc/twopc/protocol"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twopc/twopc/coordinator"
	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/participant"
	"github.com/twopc/twopc/txlog"
)

var bg = context.Background()

// fixture is a coordinator over three in-process participants (real
// SQLite files, a real txlog), served over real XML-RPC.
type fixture struct {
	t      *testing.T
	c      *coordinator.Coordinator
	stores []*participant.Store
	down   []*atomic.Bool
}

// downable fails every call while down is set, like a dead socket.
type downable struct {
	*participant.Store
	down *atomic.Bool
}

var errDown = errors.New("participant is down")

func (d downable) Prepare(ctx context.Context, id string, t *protocol.Txn) (protocol.Vote, error) {
	if d.down.Load() {
		return protocol.Vote{}, errDown
	}
	return d.Store.Prepare(ctx, id, t)
}

func newFixture(t *testing.T) *fixture {
	dir := t.TempDir()
	f := &fixture{t: t}
	var members []coordinator.Member
	for i := 1; i <= 3; i++ {
		st, err := participant.Open(filepath.Join(dir, fmt.Sprintf("p%d.db", i)), participant.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		down := &atomic.Bool{}
		f.stores, f.down = append(f.stores, st), append(f.down, down)
		members = append(members, coordinator.Member{Name: fmt.Sprintf("p%d", i), Participant: downable{st, down}})
	}
	log, _, err := txlog.Open(filepath.Join(dir, "c.txlog"), txlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	if err := log.Append(protocol.Record{Kind: protocol.KindEpoch, Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	f.c, err = coordinator.New(coordinator.Config{Members: members, Log: log, Epoch: 1, Fatal: func(err error) { t.Errorf("log failed: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.c.Close)
	return f
}

// serve exposes the fixture's coordinator over real XML-RPC.
func (f *fixture) serve(lim Limits) *rpc.Client {
	srv := rpc.NewServer(rpc.DefaultLimits(), nil)
	Register(srv, f.c, lim)
	hs := httptest.NewServer(srv)
	f.t.Cleanup(hs.Close)
	return rpc.NewClient(hs.URL+"/RPC2", nil)
}

func TestPublicAPI(t *testing.T) {
	f := newFixture(t)
	c := f.serve(Limits{MaxKeyBytes: 8, MaxValueBytes: 16})
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
	st, err := DecodeStatus(mustCall("status"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Epoch != 1 || st.Log == nil || st.Log.Records == 0 {
		t.Fatalf("status: %+v", st)
	}
	if ps := st.Participants; len(ps) != 3 || ps[0].State != coordinator.StateActive || ps[0].Name != "p1" {
		t.Fatalf("status participants: %+v", ps)
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
		var flt *rpc.Fault
		if !errors.As(err, &flt) || flt.Code != tc.code {
			t.Errorf("%s%v: %v, want fault %d", tc.method, tc.args, err, tc.code)
		}
	}
	// Nothing the faults touched was written.
	for _, k := range []string{"k", "123456789"} {
		if _, err := c.Call(bg, "get", k); err == nil {
			t.Errorf("%q written by a failed call", k)
		}
	}
	for i, st := range f.stores {
		// Commits linger in the background; resolving delivers them.
		if _, err := st.Resolve(bg, f.c, 0); err != nil {
			t.Fatal(err)
		}
		if d, err := st.Digest(bg); err != nil || d.Keys != 2 || d.Prepared != 0 {
			t.Errorf("p%d: %+v %v, want the keys b and e and nothing prepared", i+1, d, err)
		}
	}
}

// A participant that is down while a put prepares gives fault 3, and a
// write on a key locked by a stale prepared transaction gives fault 2.
func TestFaultCodesOfAbortedWrites(t *testing.T) {
	f := newFixture(t)
	c := f.serve(DefaultLimits())
	f.down[0].Store(true)
	_, err := c.Call(bg, "put", "k", "v")
	var f2 *rpc.Fault
	if !errors.As(err, &f2) || f2.Code != rpc.Unavailable {
		t.Fatalf("put with p1 down: %v, want fault 3", err)
	}
	f.down[0].Store(false)
	// The aborted put's aborts are delivered in the background; resolving
	// (as participants do on their own) makes sure they have been.
	for _, st := range f.stores {
		if _, err := st.Resolve(bg, f.c, 0); err != nil {
			t.Fatal(err)
		}
	}
	// A transaction of an unknown coordinator holds "k" at p2.
	st := f.stores[1]
	stale := &protocol.Txn{Success: []protocol.Op{{Kind: protocol.OpPut, Key: "k", Value: protocol.Value{Data: []byte("stale")}}}}
	if v, err := st.Prepare(bg, "0.1", stale); err != nil || v.Kind != protocol.VoteYes {
		t.Fatal(v, err)
	}
	_, err = c.Call(bg, "put", "k", "v")
	if !errors.As(err, &f2) || f2.Code != rpc.Conflict {
		t.Fatalf("put on a locked key: %v, want fault 2", err)
	}
	// The participant's resolver clears it: presumed abort.
	if n, err := st.Resolve(bg, f.c, 0); n != 1 || err != nil {
		t.Fatalf("resolve: %d %v", n, err)
	}
	if _, err := c.Call(bg, "get", "k"); !errors.As(err, &f2) || f2.Code != rpc.NotFound {
		t.Fatalf("get after the aborts: %v, want not found", err)
	}
	if _, err := c.Call(bg, "put", "k", "v"); err != nil {
		t.Fatal(err)
	}
}
