package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// supervised starts `twopc supervise` over a participant, as the SSH
// deploy's background mode does, and returns its command, the files it
// keeps and its output.
func supervised(t *testing.T, flags ...string) (cmd *exec.Cmd, exited <-chan error, pidfile, state string, out *output) {
	t.Helper()
	dir := t.TempDir()
	pidfile, state = filepath.Join(dir, "participant.pid"), filepath.Join(dir, "participant.restarts")
	out = &output{}
	port := freePorts(t, 1)
	args := append([]string{"supervise", "--name", "participant", "--pidfile", pidfile, "--state", state,
		"--log", filepath.Join(dir, "participant.log"), "--restart-pause", "50ms"}, flags...)
	args = append(args, "--", "participant", "--listen", "127.0.0.1:"+strconv.Itoa(port), "--db", filepath.Join(dir, "p.db"))
	cmd = exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	go func() { ch <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, ch, pidfile, state, out
}

// readPID polls the pidfile until it names a pid other than not.
func readPID(t *testing.T, pidfile string, not int) int {
	t.Helper()
	var pid int
	eventually(t, 30*time.Second, "a new pid in "+pidfile, func() error {
		b, err := os.ReadFile(pidfile)
		if err != nil {
			return err
		}
		if pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil || pid == not {
			return errors.New("not yet")
		}
		return nil
	})
	return pid
}

// The supervisor restarts a participant killed with SIGKILL, records the
// restart and why, and on SIGTERM stops the child and itself.
func TestSuperviseRestartsAfterKill9(t *testing.T) {
	cmd, exited, pidfile, state, out := supervised(t)
	first := readPID(t, pidfile, 0)
	syscall.Kill(first, syscall.SIGKILL)
	second := readPID(t, pidfile, first)
	eventually(t, 30*time.Second, "the restart recorded", func() error {
		if b, _ := os.ReadFile(state); string(b) != "1 killed by SIGKILL\n" {
			return errors.New("state: " + string(b))
		}
		return nil
	})
	out.waitFor(t, "participant killed by SIGKILL; restarting in 50ms (restart 1)")
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("supervise after SIGTERM: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("supervise still running 30s after SIGTERM")
	}
	if syscall.Kill(second, 0) == nil {
		t.Fatalf("the child (pid %d) outlived its supervisor", second)
	}
}

// A child that cannot stay up spends the budget; the supervisor then
// gives up, says why, and fails.
func TestSuperviseGivesUp(t *testing.T) {
	_, exited, pidfile, state, out := supervised(t, "--max-restarts", "2")
	// The first child and its two restarts, each killed: the third crash
	// finds the budget spent.
	for i, pid := 0, 0; i < 3; i++ {
		pid = readPID(t, pidfile, pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	select {
	case err := <-exited:
		if err == nil {
			t.Fatal("supervise exited 0 after giving up")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("supervise still running after its budget was spent")
	}
	if b, _ := os.ReadFile(state); !strings.HasPrefix(string(b), "2 gave up after killed by SIGKILL") {
		t.Fatalf("state %q, want it to say it gave up", b)
	}
	if !strings.Contains(out.String(), "giving up") {
		t.Fatalf("no reason given:\n%s", out.String())
	}
}
