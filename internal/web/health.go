package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/twopc/twopc/coordinator"
	"github.com/twopc/twopc/participant"
)

// Readiness says why a server cannot take writes now; none: it can.
type Readiness func(context.Context) []string

// readyTimeout bounds one readiness check (a coordinator probes its
// participants, each for at most a second).
const readyTimeout = 3 * time.Second

func healthz(w http.ResponseWriter, _ *http.Request) {
	plain(w, http.StatusOK, "ok\n")
}

func readyz(ready Readiness) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var why []string
		if ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
			defer cancel()
			why = ready(ctx)
		}
		if len(why) == 0 {
			plain(w, http.StatusOK, "ready\n")
			return
		}
		plain(w, http.StatusServiceUnavailable, "not ready:\n- "+strings.Join(why, "\n- ")+"\n")
	})
}

func plain(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// CoordinatorReadiness reads status: a write needs the vote of every
// participant in the write set, so one that does not answer stops every
// write until it is excluded (excluded and catching-up ones do not
// count). An overloaded participant slows writes but takes them. The decision log needs no check here: when it fails, the
// coordinator exits so that recovery can run.
func CoordinatorReadiness(status func(context.Context) coordinator.Status) Readiness {
	return func(ctx context.Context) []string {
		return notReady(status(ctx))
	}
}

func notReady(st coordinator.Status) []string {
	var why []string
	for _, p := range st.Participants {
		if p.State == coordinator.StateOffline {
			why = append(why, fmt.Sprintf("participant %s (%s) is offline: it did not answer the coordinator's probe; every write fails with fault 3 until it is back or excluded (--exclude-after)", p.Name, p.URL))
		}
	}
	return why
}

// StoreReadiness is a participant's: its store takes writes until a write
// to its database fails, after which it refuses everything (and the
// process exits, so that a restart reloads it from disk).
func StoreReadiness(s *participant.Store) Readiness {
	return func(ctx context.Context) []string {
		if _, err := s.PreparedTxs(ctx); err != nil {
			return []string{"the store is unusable: " + err.Error()}
		}
		return nil
	}
}
