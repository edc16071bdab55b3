package rpc

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The multicall path under fuzzing: system.multicall runs other methods,
// sizes their results against the reply limit and charges them to the
// request's account. Two targets: FuzzMulticall feeds it any calls array,
// FuzzMulticallLimit a generated sequence of results of known sizes.

// fuzzLimits are small, so that the fuzzer reaches every limit.
var fuzzLimits = Limits{MaxBodyBytes: 64 << 10, MaxReplyBytes: 4 << 10, MaxMulticall: 16, MaxDepth: 8, MaxParams: 8}

// fuzzServer serves, besides the test methods, "blob"(n): n bytes of
// text that XML escapes, counting its calls.
func fuzzServer(blobs *int) *Server {
	s := NewServer(fuzzLimits, slog.New(slog.DiscardHandler))
	for _, m := range testMethods() {
		s.Register(m)
	}
	s.Register(Method{Name: "blob", Handler: func(_ context.Context, p []any) (any, error) {
		*blobs++
		n, err := Int(p, 0, "n")
		if err != nil {
			return nil, err
		}
		return strings.Repeat("<&", int(min(max(n, 0), 1<<16))/2), nil
	}})
	return s
}

// serveMulticall posts a system.multicall whose param is calls (XML of a
// <value>) and returns the raw reply.
func serveMulticall(s *Server, calls string) []byte {
	body := "<?xml version=\"1.0\"?><methodCall><methodName>system.multicall</methodName><params><param>" +
		calls + "</param></params></methodCall>"
	r := httptest.NewRequest(http.MethodPost, "/RPC2", strings.NewReader(body))
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w.Body.Bytes()
}

// checkMulticallReply checks what every multicall reply must be: a fault,
// or one entry per call, each a one-element array or a fault struct with
// a short message; no longer than the limit allows; and once an entry was
// not run, no later one ran.
func checkMulticallReply(t *testing.T, raw []byte) []any {
	t.Helper()
	v, err := DecodeResponse(bytes.NewReader(raw), Limits{MaxBodyBytes: 1 << 30})
	if err != nil {
		if f, ok := asFault(err); !ok || len(f.Message) > maxMessage+32 {
			t.Fatalf("reply is not a result or a short fault: %v\n%.300s", err, raw)
		}
		return nil
	}
	entries, ok := v.([]any)
	if !ok || len(entries) > fuzzLimits.MaxMulticall {
		t.Fatalf("reply %.200v: want an array of at most %d entries", v, fuzzLimits.MaxMulticall)
	}
	if max := fuzzLimits.MaxReplyBytes + int64(len(entries))*maxFaultEntry + 512; int64(len(raw)) > max {
		t.Fatalf("reply of %d bytes, over the %d the limit allows", len(raw), max)
	}
	stopped := false
	for i, e := range entries {
		switch e := e.(type) {
		case []any:
			if len(e) != 1 || stopped {
				t.Fatalf("entry %d: %.100v (after an entry that was not run: %v)", i+1, e, stopped)
			}
		case map[string]any:
			code, ok1 := e["faultCode"].(int64)
			msg, ok2 := e["faultString"].(string)
			if !ok1 || !ok2 || len(e) != 2 || len(msg) > maxMessage+32 {
				t.Fatalf("entry %d: malformed fault %.200v", i+1, e)
			}
			notRun := strings.Contains(msg, "not run")
			if stopped && !notRun {
				t.Fatalf("entry %d: %q after an entry that was not run", i+1, msg)
			}
			stopped = stopped || notRun && code == TooLarge
		default:
			t.Fatalf("entry %d: %T", i+1, e)
		}
	}
	return entries
}

// FuzzMulticall: any calls array, decoded as a client would send it.
func FuzzMulticall(f *testing.F) {
	for _, seed := range []string{
		`<value><array><data><value><struct><member><name>methodName</name><value>add</value></member>` +
			`<member><name>params</name><value><array><data><value><int>1</int></value><value><int>2</int></value></data></array></value></member></struct></value></data></array></value>`,
		`<value><array><data><value><struct><member><name>methodName</name><value>blob</value></member>` +
			`<member><name>params</name><value><array><data><value><int>3000</int></value></data></array></value></member></struct></value>` +
			`<value><struct><member><name>methodName</name><value>blob</value></member>` +
			`<member><name>params</name><value><array><data><value><int>3000</int></value></data></array></value></member></struct></value>` +
			`<value><struct><member><name>methodName</name><value>first</value></member>` +
			`<member><name>params</name><value><array><data><value>x</value></data></array></value></member></struct></value></data></array></value>`,
		`<value><array><data><value><struct><member><name>methodName</name><value>system.multicall</value></member>` +
			`<member><name>params</name><value><array><data/></array></value></member></struct></value><value>junk</value><value><struct/></value></data></array></value>`,
		`<value><array><data><value><struct><member><name>methodName</name><value>echo</value></member>` +
			`<member><name>params</name><value><array><data><value>` + strings.Repeat("&amp;", 900) + `</value></data></array></value></member></struct></value></data></array></value>`,
		`<value><array><data/></array></value>`,
		`<value>not an array</value>`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, calls []byte) {
		var blobs int
		checkMulticallReply(t, serveMulticall(fuzzServer(&blobs), string(calls)))
	})
}

// FuzzMulticallLimit: each byte of the input is an entry, a blob of 64
// times its value in bytes (or, for 0, a call that fails). The results
// that come back must add up to no more than the limit; the entry that
// would pass it is the one that says so, and no entry after it ran.
func FuzzMulticallLimit(f *testing.F) {
	f.Add([]byte{1, 2, 3})
	f.Add([]byte{20, 20, 20, 20, 0, 1})
	f.Add([]byte{255, 1})
	f.Add([]byte{0, 0, 60, 3, 0})
	f.Fuzz(func(t *testing.T, sizes []byte) {
		if len(sizes) > fuzzLimits.MaxMulticall {
			sizes = sizes[:fuzzLimits.MaxMulticall]
		}
		var b strings.Builder
		b.WriteString("<value><array><data>")
		for _, n := range sizes {
			method, arg := "blob", fmt.Sprint(64*int(n))
			if n == 0 {
				method, arg = "fail", "2"
			}
			fmt.Fprintf(&b, "<value><struct><member><name>methodName</name><value>%s</value></member>"+
				"<member><name>params</name><value><array><data><value><int>%s</int></value></data></array></value></member></struct></value>", method, arg)
		}
		b.WriteString("</data></array></value>")
		var blobs int
		entries := checkMulticallReply(t, serveMulticall(fuzzServer(&blobs), b.String()))
		if len(entries) != len(sizes) {
			t.Fatalf("%d entries for %d calls", len(entries), len(sizes))
		}
		var used int64
		ran, stoppedAt := 0, -1
		for i, n := range sizes {
			if n == 0 {
				continue
			}
			if stoppedAt < 0 {
				ran++
			}
			size, err := valueSize([]any{strings.Repeat("<&", 64*int(n)/2)}, 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			_, gotResult := entries[i].([]any)
			switch {
			case stoppedAt >= 0 && gotResult:
				t.Fatalf("entry %d has a result after entry %d passed the limit", i+1, stoppedAt+1)
			case stoppedAt < 0 && used+size <= fuzzLimits.MaxReplyBytes && !gotResult:
				t.Fatalf("entry %d: %v, though its result fits (%d + %d bytes)", i+1, entries[i], used, size)
			case stoppedAt < 0 && used+size > fuzzLimits.MaxReplyBytes:
				if gotResult || !strings.Contains(entries[i].(map[string]any)["faultString"].(string), "ran, but") {
					t.Fatalf("entry %d passes the limit (%d + %d bytes) but got %.100v", i+1, used, size, entries[i])
				}
				stoppedAt = i
			default:
				used += size
			}
		}
		if blobs != ran {
			t.Fatalf("%d blob calls ran, want %d", blobs, ran)
		}
	})
}
