package web

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/twopc/twopc/internal/rpc"
)

// named answers with its name, so a test sees which handler served.
type named string

func (n named) ServeHTTP(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, string(n)) }

func do(t *testing.T, h http.Handler, method, path string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec.Code, rec.Body.String(), rec.Header()
}

func TestRoutes(t *testing.T) {
	var why []string
	h := New(Config{RPC: named("rpc"), Metrics: named("metrics"), Page: named("page"),
		Ready: func(context.Context) []string { return why }})
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/healthz", "ok\n"},
		{"GET", "/readyz", "ready\n"},
		{"GET", "/metrics", "metrics"},
		{"GET", "/", "page"},
		{"HEAD", "/", "page"}, // net/http drops the body
		{"POST", "/", "rpc"},
		{"POST", "/RPC2", "rpc"},
		{"GET", "/RPC2", "rpc"}, // which explains that it wants POST
		{"POST", "/metrics", "rpc"},
		{"GET", "/elsewhere", "rpc"},
	} {
		if code, body, _ := do(t, h, tc.method, tc.path); code != http.StatusOK || body != tc.want {
			t.Errorf("%s %s: %d %q, want %q", tc.method, tc.path, code, body, tc.want)
		}
	}
	why = []string{"participant p2 is offline", "something else"}
	code, body, _ := do(t, h, "GET", "/readyz")
	if code != http.StatusServiceUnavailable || body != "not ready:\n- participant p2 is offline\n- something else\n" {
		t.Errorf("readyz while not ready: %d %q", code, body)
	}
	// A participant has no page: GET / is XML-RPC's (405, POST wanted).
	h = New(Config{RPC: named("rpc"), Metrics: named("metrics")})
	if _, body, _ := do(t, h, "GET", "/"); body != "rpc" {
		t.Errorf("GET / without a page: %q", body)
	}
}

// With a client token, the page asks for it (a browser prompts: Basic
// auth); health and metrics stay open.
func TestPageNeedsTheClientToken(t *testing.T) {
	h := New(Config{RPC: named("rpc"), Metrics: named("metrics"), Page: named("page"), PageToken: rpc.NewSecret("s3cret")})
	code, body, hdr := do(t, h, "GET", "/")
	if code != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic ") || body == "page" {
		t.Errorf("without the token: %d %q %v", code, body, hdr)
	}
	if code, body, _ := do(t, h, "GET", "/", "Authorization", "Bearer wrong"); code != http.StatusUnauthorized {
		t.Errorf("a wrong token: %d %q", code, body)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth("anyone", "s3cret")
	if code, body, _ := do(t, h, "GET", "/", "Authorization", r.Header.Get("Authorization")); code != http.StatusOK || body != "page" {
		t.Errorf("Basic auth with the token: %d %q", code, body)
	}
	if code, body, _ := do(t, h, "GET", "/", "Authorization", "Bearer s3cret"); code != http.StatusOK || body != "page" {
		t.Errorf("Bearer token: %d %q", code, body)
	}
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		if code, _, _ := do(t, h, "GET", path); code != http.StatusOK {
			t.Errorf("%s without a token: %d, want it open", path, code)
		}
	}
}
