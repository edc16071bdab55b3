package proc

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func sleeper(t *testing.T) *Process {
	t.Helper()
	p := New(Spec{Name: "sleeper", Path: "/bin/sleep", Args: []string{"600"}, Log: filepath.Join(t.TempDir(), "sleeper.log")})
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill() })
	return p
}

// state reads the one-letter process state from /proc/PID/stat.
func state(t *testing.T, p *Process) string {
	t.Helper()
	p.mu.Lock()
	pid := p.cmd.Process.Pid
	p.mu.Unlock()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
}

func TestKillReapsAndRestartRuns(t *testing.T) {
	p := sleeper(t)
	if err := p.Start(); err == nil {
		t.Fatal("second Start of a running process succeeded")
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if p.Running() {
		t.Fatal("running after Kill")
	}
	if err := p.Unexpected(); err != nil {
		t.Fatalf("a kill we sent is reported as unexpected: %v", err)
	}
	if err := p.Kill(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Kill of a dead process: got %v, want ErrNotRunning", err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if !p.Running() {
		t.Fatal("not running after restart")
	}
	log := p.Tail(4096)
	if strings.Count(log, "started") != 2 || !strings.Contains(log, "sending killed") {
		t.Fatalf("log does not show two starts and a kill:\n%s", log)
	}
}

func TestStopCont(t *testing.T) {
	p := sleeper(t)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	// SIGSTOP is delivered asynchronously; wait for the kernel to act.
	for state(t, p) != "T" {
		time.Sleep(time.Millisecond)
	}
	if err := p.Cont(); err != nil {
		t.Fatal(err)
	}
	for state(t, p) == "T" {
		time.Sleep(time.Millisecond)
	}
	// A stopped process still dies of SIGTERM: Terminate continues it.
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := p.Terminate(time.Minute); err != nil {
		t.Fatal(err)
	}
	if p.Running() {
		t.Fatal("running after Terminate")
	}
}

func TestUnexpectedExit(t *testing.T) {
	p := New(Spec{Name: "quitter", Path: "/bin/sh", Args: []string{"-c", "exit 3"}, Log: filepath.Join(t.TempDir(), "q.log")})
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	err := p.Unexpected()
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("Unexpected() = %v, want the exit status", err)
	}
}
