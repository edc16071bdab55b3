package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/ops/launch"
)

// binary is the twopc executable built once by TestMain.
var binary string

func TestMain(m *testing.M) { launch.RunTests(m, &binary) }

// newCluster starts a coordinator and three participants (package
// launch), with short prepare and resolve times so that they settle
// quickly after a kill; edit changes the configuration first.
func newCluster(t *testing.T, edit ...func(*launch.Config)) *launch.Cluster {
	t.Helper()
	cfg := launch.Config{Binary: binary, Dir: t.TempDir(), PrepareTimeout: time.Second,
		ResolveAfter: time.Second, ResolveInterval: 200 * time.Millisecond}
	for _, e := range edit {
		e(&cfg)
	}
	cl, err := launch.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cl.Close()
		if t.Failed() {
			for _, n := range append([]string{cl.Coordinator()}, cl.Participants()...) {
				t.Logf("--- %s log (last 3000 bytes):\n%s", n, cl.Tail(n, 3000))
			}
		}
	})
	return cl
}

// restart kills the process called name with SIGKILL and starts it again.
func restart(t *testing.T, cl *launch.Cluster, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.Kill(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := cl.Restart(ctx, name); err != nil {
		t.Fatal(err)
	}
}

// call makes one XML-RPC call with a bounded wait, through hc (nil: a
// plain client; a cluster's PeerHTTP for participants).
func call(url string, hc *http.Client, method string, args ...any) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return rpc.NewClient(url, hc).Call(ctx, method, args...)
}

// eventually retries f until it returns nil, for at most limit: the
// processes recover in the background and this waits for them to.
func eventually(t *testing.T, limit time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ctxTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}
