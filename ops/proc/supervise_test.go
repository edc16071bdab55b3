package proc

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// wait returns what ch delivers, failing the test after a generous bound.
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("no %s after 30s", what)
		panic("unreachable")
	}
}

// hooks records the supervision's events on channels (the first 100: a
// supervisor that never stops must not block on them).
func hooks() (Hooks, chan Crash, chan Crash) {
	crashed, restarted := make(chan Crash, 100), make(chan Crash, 100)
	send := func(ch chan Crash) func(Crash) {
		return func(c Crash) {
			select {
			case ch <- c:
			default:
			}
		}
	}
	return Hooks{Crashed: send(crashed), Restarted: send(restarted)}, crashed, restarted
}

func TestSuperviseRestartsAKilledChild(t *testing.T) {
	p := sleeper(t)
	h, crashed, restarted := hooks()
	done := make(chan error, 1)
	go func() { done <- Supervise(context.Background(), p, Policy{Pause: 10 * time.Millisecond}, h) }()

	first := p.PID()
	syscall.Kill(first, syscall.SIGKILL) // as an operator's kill -9 would
	c := wait(t, crashed, "crash report")
	if c.Reason != "killed by SIGKILL" || c.Restart != 1 || c.Name != "sleeper" {
		t.Fatalf("crash reported as %+v, want sleeper killed by SIGKILL, restart 1", c)
	}
	wait(t, restarted, "restart")
	if !p.Running() || p.PID() == first {
		t.Fatalf("after the restart: running %v, pid %d (was %d)", p.Running(), p.PID(), first)
	}
	if log := p.Tail(4096); !strings.Contains(log, "killed by SIGKILL; restarting in 10ms") {
		t.Fatalf("the log does not say why it restarted:\n%s", log)
	}
	// An exit the supervisor's own side asks for ends the supervision.
	if err := p.Terminate(time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, done, "end of supervision"); err != nil {
		t.Fatalf("Supervise after Terminate: %v", err)
	}
	if p.Running() {
		t.Fatal("restarted after Terminate")
	}
}

func TestSuperviseGivesUpWhenTheBudgetIsSpent(t *testing.T) {
	p := New(Spec{Name: "crasher", Path: "/bin/sh", Args: []string{"-c", "exit 3"}, Log: filepath.Join(t.TempDir(), "c.log")})
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	h, crashed, _ := hooks()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // stops a supervisor that would not give up
	done := make(chan error, 1)
	go func() { done <- Supervise(ctx, p, Policy{Pause: time.Millisecond, Budget: 2, Window: time.Hour}, h) }()
	err := wait(t, done, "end of supervision")
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "giving up") {
		t.Fatalf("Supervise = %v, want it to give up, saying how the child ended", err)
	}
	var got []int
	for range 3 {
		got = append(got, wait(t, crashed, "crash report").Restart)
	}
	if got[0] != 1 || got[1] != 2 || got[2] != 0 {
		t.Fatalf("restart numbers %v, want [1 2 0]: two restarts, then none", got)
	}
	if n := strings.Count(p.Tail(8192), "crasher started"); n != 3 {
		t.Fatalf("%d starts, want 3 (the first and two restarts)", n)
	}
}

func TestSuperviseLeavesACleanExitAlone(t *testing.T) {
	p := New(Spec{Name: "quitter", Path: "/bin/sh", Args: []string{"-c", "exit 0"}, Log: filepath.Join(t.TempDir(), "q.log")})
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	h, crashed, _ := hooks()
	if err := Supervise(context.Background(), p, Policy{Pause: time.Millisecond}, h); err != nil {
		t.Fatal(err)
	}
	if len(crashed) != 0 || strings.Count(p.Tail(4096), "quitter started") != 1 {
		t.Fatalf("a clean exit was treated as a crash: %d reports", len(crashed))
	}
}
