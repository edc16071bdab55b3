package rpc

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Both call encoders, kolo's and ours (OwnEncoder), carry every value
// through our server unchanged.
func TestClientRoundTrip(t *testing.T) {
	ts, _ := newTestServer(t, Limits{})
	kolo := NewClient(ts.URL+"/RPC2", nil)
	for name, c := range map[string]*Client{"kolo": kolo, "own": kolo.OwnEncoder()} {
		t.Run(name, func(t *testing.T) { clientRoundTrip(t, c) })
	}
}

func clientRoundTrip(t *testing.T, c *Client) {
	ctx := t.Context()
	for _, tc := range []struct {
		name     string
		in, want any
	}{
		{"bytes arrive as bytes", []byte{0, 1, 2, 0xff}, []byte{0, 1, 2, 0xff}},
		{"empty bytes", []byte{}, []byte{}},
		{"string stays string", "aGk=", "aGk="},
		{"int", 7, int64(7)},
		{"int32 edge", int64(math.MinInt32), int64(math.MinInt32)},
		{"bool", false, false},
		{"double", -2.5, -2.5},
		{"time", utc.In(east), utc},
		{"struct with bytes inside", map[string]any{"k": []byte("v"), "n": []any{[]byte("w"), "s"}},
			map[string]any{"k": []byte("v"), "n": []any{[]byte("w"), "s"}}},
		{"typed slices", [][]byte{[]byte("a")}, []any{[]byte("a")}},
	} {
		got, err := c.Call(ctx, "first", tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %#v, %v; want %#v", tc.name, got, err, tc.want)
		}
	}
	for _, s := range hardStrings {
		got, err := c.Call(ctx, "first", s)
		if err != nil || got != s {
			t.Errorf("string %s: got %v, %v", excerpt(s), got, err)
		}
	}
	got, err := c.Call(ctx, "echo")
	if err != nil || !reflect.DeepEqual(got, []any{}) {
		t.Errorf("no args: got %#v, %v", got, err)
	}
}

func TestClientDoesNotChangeArgs(t *testing.T) {
	ts, _ := newTestServer(t, Limits{})
	arg := map[string]any{"b": []byte("x"), "l": []any{[]byte("y")}}
	if _, err := NewClient(ts.URL, nil).Call(t.Context(), "first", arg); err != nil {
		t.Fatal(err)
	}
	if want := (map[string]any{"b": []byte("x"), "l": []any{[]byte("y")}}); !reflect.DeepEqual(arg, want) {
		t.Errorf("the caller's map was changed: %#v", arg)
	}
}

func TestClientFault(t *testing.T) {
	ts, _ := newTestServer(t, Limits{})
	_, err := NewClient(ts.URL, nil).Call(t.Context(), "fail", Unavailable)
	var f *Fault
	if !errors.As(err, &f) || f.Code != Unavailable || f.Message != "failed with 3" {
		t.Fatalf("got %v, want fault %d", err, Unavailable)
	}
}

// 32 calls must be in the server's handler at the same time: each handler
// waits until all have arrived. A client that serialised calls would
// never get there and hit the test's deadline instead.
func TestClientConcurrentCalls(t *testing.T) {
	const n = 32
	var (
		mu      sync.Mutex
		arrived int
		all     = make(chan struct{})
	)
	s := NewServer(Limits{}, nil)
	s.Register(Method{Name: "barrier", Handler: func(ctx context.Context, p []any) (any, error) {
		mu.Lock()
		arrived++
		if arrived == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
			return p[0], nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}})
	ts := httptest.NewServer(s)
	defer ts.Close()

	c := NewClient(ts.URL, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			got, err := c.Call(ctx, "barrier", i)
			if err == nil && got != int64(i) {
				err = errors.New("wrong result")
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
}

func blockingServer(t *testing.T) (url string, started chan struct{}) {
	started = make(chan struct{}, 1)
	s := NewServer(Limits{}, nil)
	s.Register(Method{Name: "block", Handler: func(ctx context.Context, _ []any) (any, error) {
		started <- struct{}{}
		<-ctx.Done() // until the client goes away
		return nil, ctx.Err()
	}})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts.URL, started
}

func TestClientDeadline(t *testing.T) {
	url, _ := blockingServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := NewClient(url, nil).Call(ctx, "block")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
}

func TestClientCancel(t *testing.T) {
	url, started := blockingServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-started // the call is in the handler: now cancel it
		cancel()
	}()
	_, err := NewClient(url, nil).Call(ctx, "block")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestClientReusesConnections(t *testing.T) {
	s := NewServer(Limits{}, nil)
	s.Register(testMethods()[0])
	ts, conns := countingServer(t, s)
	c := NewClient(ts.URL, nil)
	for range 20 {
		if _, err := c.Call(t.Context(), "echo", "x"); err != nil {
			t.Fatal(err)
		}
	}
	// Also after fault replies.
	for range 5 {
		if _, err := c.Call(t.Context(), "nope"); err == nil {
			t.Fatal("want a fault")
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("25 sequential calls opened %d connections, want 1", n)
	}
}

func TestClientHTTPErrors(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/500":
			http.Error(w, "oops", http.StatusInternalServerError)
		case "/html":
			w.Write([]byte("<html><body>hello</body></html>"))
		case "/big":
			w.Write([]byte("<methodResponse><params><param><value>" + strings.Repeat("x", 1000) + "</value></param></params></methodResponse>"))
		}
	}))
	defer ts.Close()
	for _, tc := range []struct{ path, msg string }{
		{"/500", "HTTP 500 Internal Server Error: oops"},
		{"/html", "malformed response"},
		{"/big", "response body exceeds 512 bytes"},
	} {
		c := NewClient(ts.URL+tc.path, nil)
		c.lim.MaxBodyBytes = 512
		_, err := c.Call(t.Context(), "m")
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %v, want an error containing %q", tc.path, err, tc.msg)
		}
		if _, isFault := asFault(err); isFault {
			t.Errorf("%s: a broken reply came back as a *Fault", tc.path)
		}
	}
}

// Arguments kolo would send wrongly are refused before anything is sent.
func TestClientRefusesBadArgs(t *testing.T) {
	var requests atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { requests.Add(1) }))
	defer ts.Close()
	for name, c := range map[string]*Client{"kolo": NewClient(ts.URL, nil), "own": NewClient(ts.URL, nil).OwnEncoder()} {
		t.Run(name, func(t *testing.T) { refusesBadArgs(t, c, name) })
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests were sent", n)
	}
}

func refusesBadArgs(t *testing.T, c *Client, encoder string) {
	for _, tc := range []struct {
		name     string
		method   string
		arg      any
		koloOnly bool // a limit of kolo's encoder, not of XML-RPC: ours sends it
	}{
		{"nil", "m", nil, true},
		{"nil pointer", "m", (*int)(nil), true},
		{"int64 beyond int", "m", int64(math.MaxInt32) + 1, true},
		{"uint32 beyond int", "m", uint32(math.MaxUint32), true},
		{"NaN", "m", math.NaN(), false},
		{"U+0000", "m", "a\x00", false},
		{"invalid UTF-8", "m", "\xff", false},
		{"member name kolo would not escape", "m", map[string]any{"a<b": 1}, true},
		{"bad value deep inside", "m", map[string]any{"a": []any{1, math.Inf(1)}}, false},
		{"int map keys", "m", map[int]any{1: 1}, false},
		{"Go struct", "m", struct{}{}, false},
		{"year 10000", "m", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"bad method name", "a<b>", "x", false},
	} {
		if tc.koloOnly && encoder == "own" {
			continue
		}
		if _, err := c.Call(t.Context(), tc.method, tc.arg); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// countingServer serves s and counts the connections it was opened.
func countingServer(t testing.TB, s http.Handler) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	ts := httptest.NewUnstartedServer(s)
	conns := &atomic.Int32{}
	ts.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)
	return ts, conns
}
