package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// logBuffer collects a server's log; handlers log concurrently.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testMethods are the methods the server tests call.
func testMethods() []Method {
	return []Method{
		{Name: "echo", Help: "Returns its params.", Handler: func(_ context.Context, p []any) (any, error) { return p, nil }},
		{Name: "first", Handler: func(_ context.Context, p []any) (any, error) {
			if err := Arity(p, "value"); err != nil {
				return nil, err
			}
			return p[0], nil
		}},
		{Name: "add", Help: "Adds two ints.", Signature: [][]string{{"int", "int", "int"}}, Handler: func(_ context.Context, p []any) (any, error) {
			if err := Arity(p, "a", "b"); err != nil {
				return nil, err
			}
			a, err := Int(p, 0, "a")
			if err != nil {
				return nil, err
			}
			b, err := Int(p, 1, "b")
			if err != nil {
				return nil, err
			}
			return a + b, nil
		}},
		{Name: "fail", Handler: func(_ context.Context, p []any) (any, error) {
			code, err := Int(p, 0, "code")
			if err != nil {
				return nil, err
			}
			return nil, Faultf(int(code), "failed with %d", code)
		}},
		{Name: "wrapped", Handler: func(context.Context, []any) (any, error) {
			return nil, fmt.Errorf("put: %w", Faultf(Conflict, "key k is locked"))
		}},
		{Name: "broken", Handler: func(context.Context, []any) (any, error) {
			return nil, errors.New("disk on fire")
		}},
		{Name: "nan", Handler: func(context.Context, []any) (any, error) { return math.NaN(), nil }},
		{Name: "boom", Handler: func(context.Context, []any) (any, error) { panic("kaboom") }},
	}
}

func newTestServer(t *testing.T, lim Limits) (*httptest.Server, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	s := NewServer(lim, slog.New(slog.NewTextHandler(logs, nil)))
	for _, m := range testMethods() {
		s.Register(m)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts, logs
}

// post sends body and decodes the reply, checking what every XML-RPC reply
// must be: HTTP 200, text/xml, our XML declaration.
func post(t *testing.T, url, body string) (any, error) {
	t.Helper()
	resp, err := http.Post(url, "text/xml", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %s: %s", resp.Status, raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/xml; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if !bytes.HasPrefix(raw, []byte(`<?xml version="1.0"?>`)) {
		t.Errorf("reply does not start with the XML declaration: %.60s", raw)
	}
	return DecodeResponse(bytes.NewReader(raw), Limits{})
}

func encodeCall(t *testing.T, method string, params ...any) string {
	t.Helper()
	var buf bytes.Buffer
	if err := EncodeCall(&buf, method, params...); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func wantFault(t *testing.T, err error, code int, msg string) {
	t.Helper()
	f, ok := asFault(err)
	if !ok {
		t.Fatalf("got %v, want fault %d", err, code)
	}
	if f.Code != code || !strings.Contains(f.Message, msg) {
		t.Errorf("got fault %d %q, want %d containing %q", f.Code, f.Message, code, msg)
	}
}

func TestServeBothPaths(t *testing.T) {
	ts, _ := newTestServer(t, Limits{})
	for _, path := range []string{"/", "/RPC2"} {
		got, err := post(t, ts.URL+path, encodeCall(t, "add", 2, 40))
		if err != nil || got != int64(42) {
			t.Errorf("%s: got %v, %v; want 42", path, got, err)
		}
	}
}

func TestServeHTTPStatus(t *testing.T) {
	ts, _ := newTestServer(t, Limits{})
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/", http.StatusMethodNotAllowed},
		{http.MethodGet, "/RPC2", http.StatusMethodNotAllowed},
		{http.MethodPut, "/RPC2", http.StatusMethodNotAllowed},
		{http.MethodPost, "/other", http.StatusNotFound},
		{http.MethodPost, "/RPC2/", http.StatusNotFound},
		{http.MethodGet, "/favicon.ico", http.StatusNotFound},
	} {
		req, err := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader(encodeCall(t, "echo")))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: HTTP %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
		}
		if tc.status == http.StatusMethodNotAllowed {
			if allow := resp.Header.Get("Allow"); allow != "POST" {
				t.Errorf("%s %s: Allow = %q, want POST", tc.method, tc.path, allow)
			}
			if !strings.Contains(string(body), "XML-RPC endpoint") {
				t.Errorf("%s %s: body %q does not explain", tc.method, tc.path, body)
			}
		}
	}
}

func TestServeFaults(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxBodyBytes = 1024
	ts, logs := newTestServer(t, lim)
	for _, tc := range []struct {
		name, body string
		code       int
		msg        string
	}{
		{"unknown method", encodeCall(t, "nope.nothing"), MethodNotFound, `unknown method "nope.nothing"`},
		{"not XML", "hello", ParseError, "malformed XML"},
		{"bad int", oneParam("<int>12a</int>"), ParseError, "not an integer"},
		{"not a methodCall", "<a/>", InvalidRequest, "want <methodCall>"},
		{"body over limit", oneParam(strings.Repeat("x", 2000)), TooLarge, "request body exceeds 1024 bytes"},
		{"application fault", encodeCall(t, "fail", NotFound), NotFound, "failed with 1"},
		{"wrapped fault is sent as is", encodeCall(t, "wrapped"), Conflict, "key k is locked"},
		{"plain error", encodeCall(t, "broken"), InternalError, "internal error: disk on fire"},
		{"unencodable result", encodeCall(t, "nan"), InternalError, "XML-RPC doubles are finite"},
		{"wrong arity", encodeCall(t, "add", 1), InvalidParams, "want 2 params (a, b), got 1"},
		{"wrong type", encodeCall(t, "add", 1, "2"), InvalidParams, "param 2 (b): want int, got string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := post(t, ts.URL+"/RPC2", tc.body)
			if err == nil {
				t.Fatalf("got %#v, want fault %d", got, tc.code)
			}
			wantFault(t, err, tc.code, tc.msg)
		})
	}
	if !strings.Contains(logs.String(), "disk on fire") {
		t.Errorf("the plain error was not logged:\n%s", logs)
	}
}

func TestServeSurvivesPanic(t *testing.T) {
	ts, logs := newTestServer(t, Limits{})
	_, err := post(t, ts.URL, encodeCall(t, "boom"))
	wantFault(t, err, InternalError, "method boom panicked")
	if l := logs.String(); !strings.Contains(l, "kaboom") || !strings.Contains(l, "goroutine") {
		t.Errorf("the panic and its stack were not logged:\n%s", l)
	}
	got, err := post(t, ts.URL, encodeCall(t, "first", "still here"))
	if err != nil || got != "still here" {
		t.Errorf("after the panic: got %v, %v", got, err)
	}
}

func TestRegisterPanics(t *testing.T) {
	h := func(context.Context, []any) (any, error) { return nil, nil }
	for _, tc := range []struct {
		name string
		m    Method
	}{
		{"duplicate", Method{Name: "system.listMethods", Handler: h}},
		{"bad name", Method{Name: "a b", Handler: h}},
		{"empty name", Method{Handler: h}},
		{"nil handler", Method{Name: "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Register did not panic")
				}
			}()
			NewServer(Limits{}, nil).Register(tc.m)
		})
	}
}

func TestIntrospection(t *testing.T) {
	ts, _ := newTestServer(t, Limits{})
	got, err := post(t, ts.URL, encodeCall(t, "system.listMethods"))
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"add", "boom", "broken", "echo", "fail", "first", "nan",
		"system.listMethods", "system.methodHelp", "system.methodSignature", "system.multicall", "wrapped"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("listMethods = %v\nwant %v", got, want)
	}

	for _, tc := range []struct {
		method string
		params []any
		want   any
	}{
		{"system.methodHelp", []any{"add"}, "Adds two ints."},
		{"system.methodHelp", []any{"first"}, ""},
		{"system.methodSignature", []any{"add"}, []any{[]any{"int", "int", "int"}}},
		{"system.methodSignature", []any{"echo"}, "undef"},
		{"system.methodSignature", []any{"system.multicall"}, []any{[]any{"array", "array"}}},
	} {
		got, err := post(t, ts.URL, encodeCall(t, tc.method, tc.params...))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s%v = %#v, %v; want %#v", tc.method, tc.params, got, err, tc.want)
		}
	}

	_, err = post(t, ts.URL, encodeCall(t, "system.methodHelp", "nope"))
	wantFault(t, err, MethodNotFound, `"nope"`)
	_, err = post(t, ts.URL, encodeCall(t, "system.methodSignature"))
	wantFault(t, err, InvalidParams, "want 1 params (name), got 0")
	_, err = post(t, ts.URL, encodeCall(t, "system.listMethods", 1))
	wantFault(t, err, InvalidParams, "want no params")
}

// A method with a param reader gets what it read, when it reads the call
// whole, and the tree otherwise: another shape, a second param, XML the
// fast path leaves to encoding/xml.
func TestReadParam(t *testing.T) {
	s := NewServer(Limits{}, nil)
	type sum int64
	s.Register(Method{
		Name: "sum",
		ReadParam: func(r *ValueReader) (any, bool) {
			var n int64
			ok := r.Array()
			for ok && r.Next() {
				var x int64
				x, ok = r.Int()
				n += x
			}
			return sum(n), ok && !r.Failed()
		},
		Handler: func(_ context.Context, ps []any) (any, error) {
			if n, ok := ps[0].(sum); ok {
				return fmt.Sprint("read ", int64(n)), nil
			}
			return fmt.Sprintf("tree %d params", len(ps)), nil
		},
	})
	ts := httptest.NewServer(s)
	defer ts.Close()
	for _, c := range []struct{ body, want string }{
		{encodeCall(t, "sum", []any{1, 2, 3}), "read 6"},
		{encodeCall(t, "sum", []any{}), "read 0"},
		{encodeCall(t, "sum", []any{1, "2"}), "tree 1 params"},
		{encodeCall(t, "sum", []any{1}, 2), "tree 2 params"},
		{strings.Replace(encodeCall(t, "sum", []any{1}), "<int>", "<!-- a comment --><int>", 1), "tree 1 params"},
	} {
		got, err := post(t, ts.URL, c.body)
		if err != nil || got != c.want {
			t.Errorf("%s: %v (%v), want %q", c.body, got, err, c.want)
		}
	}
}
