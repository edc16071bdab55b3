package launch

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/ops/proc"
	"net/http"
)

var binary string

func TestMain(m *testing.M) { RunTests(m, &binary) }

func start(t *testing.T) *Cluster { return startWith(t, Config{PrepareTimeout: time.Second}) }

// startWith starts a cluster of cfg in a temporary folder, and shows its
// logs if the test fails.
func startWith(t *testing.T, cfg Config) *Cluster {
	t.Helper()
	cfg.Binary, cfg.Dir = binary, t.TempDir()
	c, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			for _, n := range append(c.Participants(), c.Coordinator()) {
				t.Logf("--- %s log:\n%s", n, c.Tail(n, 3000))
			}
		}
	})
	return c
}

func call(t *testing.T, url string, hc *http.Client, method string, args ...any) (any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return rpc.NewClient(url, hc).Call(ctx, method, args...)
}

func TestStartKillRestartPause(t *testing.T) {
	c := start(t)
	if got := strings.Join(c.Participants(), ","); got != "p1,p2,p3" {
		t.Fatalf("participants %s", got)
	}
	if _, err := call(t, c.CoordinatorURL(), c.ClientHTTP(), "put", "k", "v"); err != nil {
		t.Fatal(err)
	}
	// Participants answer only the peer token.
	var f *rpc.Fault
	if _, err := call(t, c.URL("p2"), nil, "digest"); !errors.As(err, &f) || f.Code != rpc.NotAuthorised {
		t.Fatalf("digest without the peer token: %v, want fault %d", err, rpc.NotAuthorised)
	}
	if _, err := call(t, c.URL("p2"), c.PeerHTTP(), "digest"); err != nil {
		t.Fatalf("digest with the peer token: %v", err)
	}

	ctx := context.Background()
	if err := c.Kill(ctx, "coordinator"); err != nil {
		t.Fatal(err)
	}
	if err := c.Healthy(ctx); err == nil || !strings.Contains(err.Error(), "coordinator is not running") {
		t.Fatalf("Healthy with the coordinator killed: %v", err)
	}
	if err := c.Restart(ctx, "coordinator"); err != nil {
		t.Fatal(err)
	}
	if v, err := call(t, c.CoordinatorURL(), c.ClientHTTP(), "get", "k"); err != nil || v != "v" {
		t.Fatalf("get after the coordinator's restart = %v, %v", v, err)
	}
	if err := c.Pause(ctx, "p3"); err != nil {
		t.Fatal(err)
	}
	if err := c.Healthy(ctx); err == nil || !strings.Contains(err.Error(), "p3 is paused") {
		t.Fatalf("Healthy with p3 paused: %v", err)
	}
	if err := c.Resume(ctx, "p3"); err != nil {
		t.Fatal(err)
	}
	if err := c.Healthy(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(ctx, "p9"); err == nil {
		t.Fatal("killing a process the cluster does not have succeeded")
	}
	c.Close()
	for _, n := range append(c.Participants(), c.Coordinator()) {
		if c.Process(n).Running() {
			t.Errorf("%s runs after Close", n)
		}
	}
}

// lines collects what Supervise reports, for a test to wait on.
type lines struct {
	mu  sync.Mutex
	got []string
}

func (l *lines) add(s string) { l.mu.Lock(); l.got = append(l.got, s); l.mu.Unlock() }

// waitFor polls, with a bound, for a reported line containing want.
func (l *lines) waitFor(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		for _, s := range l.got {
			if strings.Contains(s, want) {
				l.mu.Unlock()
				return s
			}
		}
		l.mu.Unlock()
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	t.Fatalf("no report containing %q in 30s; got %q", want, l.got)
	return ""
}

// The first recovery drill a user runs by hand: kill -9 the coordinator
// of a supervised cluster; it comes back, says so, and an acknowledged
// write is still there.
func TestSuperviseRestartsAKilledCoordinator(t *testing.T) {
	c := start(t)
	ctx, cancel := context.WithCancel(context.Background())
	var rep lines
	done := make(chan error, 1)
	go func() { done <- c.Supervise(ctx, proc.Policy{Pause: 50 * time.Millisecond}, rep.add) }()
	if _, err := call(t, c.CoordinatorURL(), c.ClientHTTP(), "put", "k", "acked"); err != nil {
		t.Fatal(err)
	}
	first := c.Process("coordinator").PID()
	syscall.Kill(first, syscall.SIGKILL) // from outside, as kill -9 would
	rep.waitFor(t, "coordinator killed by SIGKILL; restarting in 50ms (restart 1); its log holds ")
	back := rep.waitFor(t, "coordinator serving again")
	if !strings.Contains(back, "recovered") {
		t.Errorf("no recovery count in %q", back)
	}
	if pid := c.Process("coordinator").PID(); pid == first {
		t.Fatalf("still pid %d", pid)
	}
	if v, err := call(t, c.CoordinatorURL(), c.ClientHTTP(), "get", "k"); err != nil || v != "acked" {
		t.Fatalf("get after the restart = %v, %v", v, err)
	}
	// A participant too.
	syscall.Kill(c.Process("p2").PID(), syscall.SIGKILL)
	rep.waitFor(t, "p2 killed by SIGKILL; restarting")
	rep.waitFor(t, "p2 serving again")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Supervise after ctx ended: %v", err)
	}
}

// Unsupervised (twopc local --no-restart), a crash ends the wait, naming
// the process and how it ended.
func TestWaitReportsAnExit(t *testing.T) {
	c := start(t)
	done := make(chan error, 1)
	go func() { done <- c.Wait(context.Background()) }()
	syscall.Kill(c.Process("p1").PID(), syscall.SIGKILL)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "p1 exited unexpectedly (killed by SIGKILL") {
			t.Fatalf("Wait = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Wait did not return 30s after p1 was killed")
	}
	if filepath.Base(c.TxlogPath()) != "coordinator.txlog" {
		t.Fatal(c.TxlogPath())
	}
}

// Free ports come from below the kernel's ephemeral range, which outgoing
// connections draw from, so none of them takes a port before its child
// binds it.
func TestFreePortsAreBelowTheEphemeralRange(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Fatal(err) // the tests run on Linux
	}
	low, err := strconv.Atoi(strings.Fields(string(b))[0])
	if err != nil || low <= 20001 {
		t.Fatalf("ephemeral range %q: this test wants it above 20000", b)
	}
	addrs, err := ports(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		_, p, _ := net.SplitHostPort(a)
		port, _ := strconv.Atoi(p)
		if port < 20000 || port >= low || seen[a] {
			t.Fatalf("ports %v: %s is not a new one in [20000, %d)", addrs, a, low)
		}
		seen[a] = true
	}
}
