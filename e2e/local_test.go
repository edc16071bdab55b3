package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// output is a process's stdout and stderr, safe to read while it runs.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor polls, with a bound, until the output holds want.
func (o *output) waitFor(t *testing.T, want string) {
	t.Helper()
	eventually(t, 60*time.Second, fmt.Sprintf("output saying %q", want), func() error {
		if strings.Contains(o.String(), want) {
			return nil
		}
		return errors.New("not yet:\n" + o.String())
	})
}

// freePorts finds n consecutive free loopback ports, as twopc local
// takes them (the coordinator's, then one per participant).
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for try := range 50 {
		base := 20000 + (time.Now().Nanosecond()/1000+try*977)%40000
		free := true
		for i := range n {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil {
				free = false
				break
			}
			ln.Close()
		}
		if free {
			return base
		}
	}
	t.Fatal("no block of free ports")
	return 0
}

// runLocal starts `twopc local` as a user would, and stops it (Ctrl-C)
// when the test ends.
// The channel delivers its exit error once it has exited.
func runLocal(t *testing.T, args ...string) (<-chan error, *output, string) {
	t.Helper()
	port := freePorts(t, 4)
	var out output
	cmd := exec.Command(binary, append([]string{"local", "--dir", t.TempDir(), "--port", strconv.Itoa(port)}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited, done := make(chan error, 1), make(chan struct{})
	go func() { exited <- cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("twopc local still running 30s after Ctrl-C")
		}
		if t.Failed() {
			t.Logf("twopc local said:\n%s", out.String())
		}
	})
	out.waitFor(t, "Ctrl-C stops everything")
	return exited, &out, fmt.Sprintf("http://127.0.0.1:%d/RPC2", port)
}

// pid reads a process's pid from the pids line twopc local prints.
func pid(t *testing.T, out *output, name string) int {
	t.Helper()
	m := regexp.MustCompile(`\b` + name + `=(\d+)\b`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no pid of %s in:\n%s", name, out.String())
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// The first recovery drill of the README, as a user runs it by hand:
// twopc local, a put, kill -9 of the coordinator. Local restarts it and
// says so, and the acknowledged write is still there.
func TestLocalRestartsAKilledCoordinator(t *testing.T) {
	_, out, url := runLocal(t, "--restart-pause", "100ms")
	if _, err := call(url, nil, "put", "hello", "acked"); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(pid(t, out, "coordinator"), syscall.SIGKILL)
	out.waitFor(t, "coordinator killed by SIGKILL; restarting in 100ms (restart 1)")
	out.waitFor(t, "coordinator serving again")
	if v, err := call(url, nil, "get", "hello"); err != nil || v != "acked" {
		t.Fatalf("get after the coordinator was killed and restarted = %v, %v", v, err)
	}
	// A participant too: writes go on once it is back.
	syscall.Kill(pid(t, out, "p2"), syscall.SIGKILL)
	out.waitFor(t, "p2 serving again")
	eventually(t, 30*time.Second, "put after p2's restart", func() error {
		_, err := call(url, nil, "put", "after", "p2")
		return err
	})
}

// With --no-restart, a kill -9 stops the whole cluster, as before.
func TestLocalNoRestartStops(t *testing.T) {
	exited, out, _ := runLocal(t, "--no-restart")
	syscall.Kill(pid(t, out, "p2"), syscall.SIGKILL)
	select {
	case err := <-exited:
		if err == nil {
			t.Fatal("twopc local exited 0 after a process died")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("twopc local still running 30s after p2 was killed")
	}
	out.waitFor(t, "p2 exited unexpectedly (killed by SIGKILL")
}
