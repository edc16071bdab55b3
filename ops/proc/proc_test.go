package proc

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
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
	if s := state(t, p); s != "T" {
		t.Fatalf("state %s once Stop returned, want T", s)
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

// spinEnv makes this test binary a child that keeps every core busy on
// several threads, the kind of process kill(2) does not stop at once.
const spinEnv = "TWOPC_PROC_TEST_SPIN"

func TestMain(m *testing.M) {
	if os.Getenv(spinEnv) == "1" {
		for i := 0; i < 2*runtime.NumCPU(); i++ {
			go func() {
				for {
				}
			}()
		}
		select {}
	}
	os.Exit(m.Run())
}

// Stop returns only once no thread of the child runs: a test that
// pauses a process and then expects silence relies on it. A busy child
// with several threads makes the kernel's one-by-one stop visible.
func TestStopReturnsOnceEveryThreadStopped(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(spinEnv, "1")
	p := New(Spec{Name: "spinner", Path: self, Log: filepath.Join(t.TempDir(), "spin.log")})
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill() })
	p.mu.Lock()
	pid := p.cmd.Process.Pid
	p.mu.Unlock()
	for i := 0; i < 200; i++ {
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		running, err := threadsRunning(pid)
		if err != nil {
			t.Fatal(err)
		}
		if running != 0 {
			t.Fatalf("round %d: threads still running once Stop returned: %d", i, running)
		}
		if err := p.Cont(); err != nil {
			t.Fatal(err)
		}
	}
}
