package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/twopc/twopc/internal/metrics"
	"github.com/twopc/twopc/internal/rpc"
)

// checkHTTPSurface checks what a secured cluster (TLS, peer token
// "peer-secret-1", client token "client-secret-2") serves besides
// XML-RPC: health and metrics open and free of secrets, the status page
// only with the client token, and a hint to use https for plain HTTP.
func checkHTTPSurface(t *testing.T, tlsClient *http.Client, coordURL string, purls []string) {
	t.Helper()
	get := func(url string, auth func(*http.Request)) (int, string, http.Header) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != nil {
			auth(req)
		}
		resp, err := tlsClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, secret := range []string{"peer-secret-1", "client-secret-2"} {
			if strings.Contains(string(b), secret) {
				t.Fatalf("GET %s shows a secret", url)
			}
		}
		return resp.StatusCode, string(b), resp.Header
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	root := base(coordURL) + "/"
	if code, _, h := get(root, nil); code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("status page without the client token: %d %v, want 401 asking for Basic auth", code, h)
	}
	if code, _, _ := get(root, bearer("peer-secret-1")); code != http.StatusUnauthorized {
		t.Errorf("status page with the peer token: %d, want 401", code)
	}
	code, body, _ := get(root, func(r *http.Request) { r.SetBasicAuth("operator", "client-secret-2") })
	if code != http.StatusOK || !strings.Contains(body, `data-participant="p3"`) {
		t.Errorf("status page with the client token as a browser sends it: %d %.200q", code, body)
	}
	for _, u := range append([]string{coordURL}, purls...) {
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, body, _ := get(base(u)+path, nil); code != http.StatusOK {
				t.Errorf("%s%s without a token: %d %q", base(u), path, code, body)
			}
		}
		code, body, _ := get(base(u)+"/metrics", nil)
		if _, err := metrics.Parse(strings.NewReader(body)); code != http.StatusOK || err != nil {
			t.Errorf("%s/metrics without a token: %d %v", base(u), code, err)
		}
	}
	if code, _, _ := get(base(purls[0])+"/", nil); code != http.StatusMethodNotAllowed {
		t.Errorf("GET / on a participant: %d, want XML-RPC's 405", code)
	}

	// Plain HTTP to the TLS port is told which URL to use.
	plain := strings.Replace(coordURL, "https://", "http://", 1)
	_, err := rpc.NewClient(plain, nil).Call(context.Background(), "status")
	if err == nil || !strings.Contains(err.Error(), "use "+coordURL) {
		t.Errorf("plain HTTP call to a TLS coordinator: %v, want a hint to use %s", err, coordURL)
	}
}
