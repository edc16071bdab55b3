package e2e

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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

// freePort returns a loopback address nobody listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startBinary runs twopc with args until the test ends, its output in
// dir/name.log.
func startBinary(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	out, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			t.Logf("--- %s log:\n%s", name, b[max(0, len(b)-2000):])
		}
	})
}

// kill kills the named processes with SIGKILL.
func kill(t *testing.T, cl *launch.Cluster, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := cl.Kill(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
}

// start starts the named process again.
func start(t *testing.T, cl *launch.Cluster, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.Restart(ctx, name); err != nil {
		t.Fatal(err)
	}
}
