package rpc

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// bigServer serves "big" (a value of n bytes, string or base64, as asked)
// and counts its calls.
func bigServer(t *testing.T, lim Limits) (url string, calls *atomic.Int64) {
	t.Helper()
	ts, _ := newTestServer(t, lim)
	calls = new(atomic.Int64)
	ts.Config.Handler.(*Server).Register(Method{Name: "big", Handler: func(_ context.Context, p []any) (any, error) {
		calls.Add(1)
		n, err := Int(p, 0, "n")
		if err != nil {
			return nil, err
		}
		if len(p) > 1 && p[1] == "base64" {
			return bytes.Repeat([]byte{0xfb}, int(n)), nil
		}
		return strings.Repeat("a&<b>\r", int(n)/6), nil // escapes make it 3.5x as long in XML
	}})
	return ts.URL, calls
}

// A reply bigger than the pooled buffer goes out straight from the result,
// byte for byte what EncodeResponse writes, with its Content-Length; past
// MaxReplyBytes it is fault 4, which names the limit.
func TestBigReplies(t *testing.T) {
	lim := Limits{MaxReplyBytes: 5 << 20}
	url, _ := bigServer(t, lim)
	for _, tc := range []struct {
		n    int64
		kind string
	}{{1 << 20, "string"}, {1 << 20, "base64"}, {3 << 20, "base64"}, {10, "string"}, {flushAt, "string"}} {
		resp, err := http.Post(url, "text/xml", strings.NewReader(encodeCall(t, "big", tc.n, tc.kind)))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var want bytes.Buffer
		v := any(strings.Repeat("a&<b>\r", int(tc.n)/6))
		if tc.kind == "base64" {
			v = bytes.Repeat([]byte{0xfb}, int(tc.n))
		}
		if err := EncodeResponse(&want, v); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%d-byte %s: reply of %d bytes differs from EncodeResponse's %d", tc.n, tc.kind, len(got), want.Len())
		}
		if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(want.Len()) {
			t.Errorf("%d-byte %s: Content-Length %s, want %d", tc.n, tc.kind, cl, want.Len())
		}
	}
	_, err := post(t, url, encodeCall(t, "big", 2<<20, "string"))
	wantFault(t, err, TooLarge, "the reply to big exceeds the limit of 5242880 bytes")
}

// The attack in small: a multicall that asks for the same big
// value a thousand times gets the results that fit in MaxReplyBytes, a
// TooLarge fault for the one that would pass it, and TooLarge for the rest,
// which never run; the server never holds more than about one result.
func TestMulticallReplyLimit(t *testing.T) {
	lim := Limits{MaxReplyBytes: 4 << 20}
	url, calls := bigServer(t, lim)
	entry := map[string]any{"methodName": "big", "params": []any{1 << 20, "base64"}}
	batch := make([]any, 1000)
	for i := range batch {
		batch[i] = entry
	}
	body := encodeCall(t, "system.multicall", batch)
	var got any
	var err error
	alloc := allocated(func() { got, err = post(t, url, body) })
	if err != nil {
		t.Fatal(err)
	}
	entries := got.([]any)
	// Each result is 1 MiB in base64: 1.4 MB of XML; three fit in 4 MiB.
	for i, e := range entries {
		switch {
		case i < 2:
			if r, ok := e.([]any); !ok || len(r[0].([]byte)) != 1<<20 {
				t.Fatalf("entry %d: %.80v, want the value", i+1, e)
			}
		case i == 2:
			checkFaultEntry(t, e, TooLarge, "multicall entry 3 ran, but its result would take the reply past the limit of 4194304 bytes")
		default:
			checkFaultEntry(t, e, TooLarge, "not run: the reply reached the limit of 4194304 bytes")
		}
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d entries ran, want 3", n)
	}
	// The reply, its two decodings (here, in the test) and a result or
	// two: far from the 1.4 GB an unbounded reply would be.
	if alloc > 64<<20 {
		t.Errorf("the multicall allocated %d MB", alloc>>20)
	}
}

func checkFaultEntry(t *testing.T, e any, code int, msg string) {
	t.Helper()
	m, ok := e.(map[string]any)
	if !ok || m["faultCode"] != int64(code) || !strings.Contains(m["faultString"].(string), msg) {
		t.Fatalf("entry %.100v, want fault %d with %q", e, code, msg)
	}
}

// Once the client is gone, a multicall runs no more entries: each would
// fail at once, but could leave work behind (a read queued at a
// participant) to be done for no one.
func TestMulticallStopsWhenTheClientIsGone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := NewServer(Limits{}, nil)
	var ran atomic.Int64
	s.Register(Method{Name: "work", Handler: func(context.Context, []any) (any, error) { ran.Add(1); return true, nil }})
	s.Register(Method{Name: "leave", Handler: func(context.Context, []any) (any, error) { cancel(); return true, nil }})
	work := map[string]any{"methodName": "work", "params": []any{}}
	body := encodeCall(t, "system.multicall", []any{work, work, map[string]any{"methodName": "leave", "params": []any{}}, work, work, work})
	r := httptest.NewRequest(http.MethodPost, "/RPC2", strings.NewReader(body)).WithContext(ctx)
	s.ServeHTTP(httptest.NewRecorder(), r)
	if n := ran.Load(); n != 2 {
		t.Errorf("%d entries ran, want the 2 before the client left", n)
	}
}
