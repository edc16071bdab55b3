package web

import (
	"net/http"

	"github.com/twopc/twopc/internal/rpc"
)

// Config is what a server serves. RPC and Metrics are required.
type Config struct {
	RPC     http.Handler // POST / and /RPC2, and every path not below
	Metrics http.Handler // GET /metrics
	Ready   Readiness    // GET /readyz; nil: ready whenever it serves
	Page    http.Handler // GET / (a coordinator's status page); nil: none
	// PageToken, if set, is required to see the page (see doc.go).
	PageToken rpc.Secret
}

// New returns the server's handler.
func New(cfg Config) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.Handle("GET /readyz", readyz(cfg.Ready))
	mux.Handle("GET /metrics", cfg.Metrics)
	if cfg.Page != nil {
		// GET covers HEAD; POST / still reaches the XML-RPC server.
		mux.Handle("GET /{$}", requireToken(cfg.PageToken, cfg.Page))
	}
	mux.Handle("/", cfg.RPC)
	return mux
}

// requireToken lets through requests that present secret (all, when it is
// unset); others get 401 and a browser asks for it.
func requireToken(secret rpc.Secret, h http.Handler) http.Handler {
	if !secret.IsSet() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if secret.Check(rpc.PresentedToken(r)) {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="twopc", charset="UTF-8"`)
		http.Error(w, "this page needs the client token: give it as the password (any user name) or as a Bearer token", http.StatusUnauthorized)
	})
}
