package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Spec says how to run one process.
type Spec struct {
	Name string   // for messages, e.g. "coordinator" or "p2"
	Path string   // executable
	Args []string // without the executable
	Log  string   // file that receives stdout and stderr (appended to)
	// DeathSignal is sent to the child if this process dies; 0 means
	// SIGKILL.
	DeathSignal syscall.Signal
}

// Process is one named process that may be started, signalled and
// started again. Its methods are safe for concurrent use.
type Process struct {
	spec Spec

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed once the current child has been reaped
	err      error         // from Wait, valid once done is closed
	expected bool          // the exit was caused by Kill or Terminate
	stopped  bool          // SIGSTOP sent, no SIGCONT since
	unexp    error         // first exit nobody asked for
}

// ErrNotRunning is returned when a signal is sent to a process whose child
// has exited (or was never started).
var ErrNotRunning = errors.New("proc: not running")

// New returns a Process for spec; nothing runs until Start.
func New(spec Spec) *Process {
	if spec.DeathSignal == 0 {
		spec.DeathSignal = syscall.SIGKILL
	}
	return &Process{spec: spec}
}

// Name is the spec's name.
func (p *Process) Name() string { return p.spec.Name }

// LogPath is the file the child writes to.
func (p *Process) LogPath() string { return p.spec.Log }

// Start runs the child. It fails if a child of p is still alive.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.aliveLocked() {
		return fmt.Errorf("proc: start %s: already running (pid %d)", p.spec.Name, p.cmd.Process.Pid)
	}
	out, err := os.OpenFile(p.spec.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("proc: start %s: %w", p.spec.Name, err)
	}
	cmd := exec.Command(p.spec.Path, p.spec.Args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: p.spec.DeathSignal}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("proc: start %s: %w", p.spec.Name, err)
	}
	fmt.Fprintf(out, "--- proc: %s started, pid %d, at %s\n", p.spec.Name, cmd.Process.Pid, stamp())
	done := make(chan struct{})
	p.cmd, p.done, p.err, p.expected, p.stopped = cmd, done, nil, false, false
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(out, "--- proc: %s exited (%v) at %s\n", p.spec.Name, exitText(err), stamp())
		out.Close()
		p.mu.Lock()
		p.err = err
		if !p.expected && p.unexp == nil {
			p.unexp = fmt.Errorf("%s exited on its own (%v); see %s", p.spec.Name, exitText(err), p.spec.Log)
		}
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

func (p *Process) aliveLocked() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Running reports whether the child is alive (a stopped child is alive).
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.aliveLocked()
}

// Stopped reports whether the child is alive and stopped (SIGSTOP sent,
// no SIGCONT since).
func (p *Process) Stopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.aliveLocked() && p.stopped
}

// Done is closed when the current child has exited; nil before Start.
func (p *Process) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Err is the current child's exit error, once Done is closed.
func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// PID is the current child's process id, 0 before Start.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// ExitReason says how the current child ended ("killed by SIGKILL",
// "exit status 2"), once Done is closed.
func (p *Process) ExitReason() string { return exitText(p.Err()) }

// Unexpected returns the first exit of a child that neither Kill nor
// Terminate caused, or nil.
func (p *Process) Unexpected() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unexp
}

// Kill sends SIGKILL and returns once the child has been reaped. The
// child gets no chance to clean up: this is the crash a drill injects.
// Killing a stopped child works (SIGKILL needs no SIGCONT).
func (p *Process) Kill() error {
	return p.end(syscall.SIGKILL, 0)
}

// Terminate sends SIGTERM and waits up to grace for the child to exit,
// then kills it. It is the clean shutdown; a child not running is fine.
func (p *Process) Terminate(grace time.Duration) error {
	err := p.end(syscall.SIGTERM, grace)
	if errors.Is(err, ErrNotRunning) {
		return nil
	}
	return err
}

func (p *Process) end(sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	if !p.aliveLocked() {
		p.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotRunning, p.spec.Name)
	}
	cmd, done := p.cmd, p.done
	p.expected = true
	if sig == syscall.SIGTERM && p.stopped {
		// A stopped process would never see SIGTERM.
		cmd.Process.Signal(syscall.SIGCONT)
	}
	p.mu.Unlock()
	p.note("sending %v", sig)
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("proc: %v to %s: %w", sig, p.spec.Name, err)
	}
	if sig == syscall.SIGKILL {
		<-done
		return nil
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
	return nil
}

// Stop sends SIGSTOP: the child stays alive, holds its sockets and files,
// and answers nothing until Cont. It returns once every thread of the
// child has stopped: the kernel stops them one by one, and on a busy
// machine a thread can go on answering messages for milliseconds after
// kill(2) returns, which a test that pauses a process and then expects
// silence must not see.
func (p *Process) Stop() error {
	if err := p.signal(syscall.SIGSTOP, true); err != nil {
		return err
	}
	p.mu.Lock()
	pid, done := p.cmd.Process.Pid, p.done
	p.mu.Unlock()
	return waitStopped(p.spec.Name, pid, done, stopWait)
}

// stopWait bounds how long Stop waits for the kernel to stop a child.
const stopWait = 10 * time.Second

// waitStopped polls /proc until no thread of pid runs (or the child is
// gone), for at most limit.
func waitStopped(name string, pid int, done <-chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		running, err := threadsRunning(pid)
		if err != nil || running == 0 {
			return nil // gone: nothing runs, and Wait reports how it ended
		}
		select {
		case <-done:
			return nil
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("proc: %s (pid %d) still has %d threads running %v after SIGSTOP", name, pid, running, limit)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// threadsRunning counts the threads of pid that are not stopped (state
// T or t) or dead (Z or X), from /proc/PID/task/*/stat.
func threadsRunning(pid int) (int, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	running := 0
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/stat")
		if err != nil {
			continue // the thread exited
		}
		// "tid (comm) S ...": the state follows the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			continue
		}
		switch b[i+2] {
		case 'T', 't', 'Z', 'X':
		default:
			running++
		}
	}
	return running, nil
}

// Cont sends SIGCONT to a stopped child.
func (p *Process) Cont() error { return p.signal(syscall.SIGCONT, false) }

func (p *Process) signal(sig syscall.Signal, stopped bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.aliveLocked() {
		return fmt.Errorf("%w: %v to %s", ErrNotRunning, sig, p.spec.Name)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("proc: %v to %s: %w", sig, p.spec.Name, err)
	}
	p.stopped = stopped
	p.noteLocked("sent %v", sig)
	return nil
}

// note appends a line to the child's log, so that the log shows when the
// parent acted on it. Best effort: the log is for people.
func (p *Process) note(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.noteLocked(format, args...)
}

func (p *Process) noteLocked(format string, args ...any) {
	f, err := os.OpenFile(p.spec.Log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return
	}
	fmt.Fprintf(f, "--- proc: %s: %s at %s\n", p.spec.Name, fmt.Sprintf(format, args...), stamp())
	f.Close()
}

// Tail returns up to the last n bytes of the log, for error messages.
func (p *Process) Tail(n int) string {
	b, _ := os.ReadFile(p.spec.Log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func stamp() string { return time.Now().UTC().Format("15:04:05.000") }

// exitText says how a child ended, in an operator's words: "exit status
// 2", "killed by SIGKILL".
func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by " + signalName(ws.Signal())
		}
	}
	return err.Error()
}

// signalName is the SIG name operators know a signal by.
func signalName(s syscall.Signal) string {
	names := map[syscall.Signal]string{
		syscall.SIGKILL: "SIGKILL", syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT",
		syscall.SIGQUIT: "SIGQUIT", syscall.SIGABRT: "SIGABRT", syscall.SIGSEGV: "SIGSEGV",
		syscall.SIGBUS: "SIGBUS", syscall.SIGILL: "SIGILL", syscall.SIGFPE: "SIGFPE",
		syscall.SIGHUP: "SIGHUP", syscall.SIGPIPE: "SIGPIPE",
	}
	if n, ok := names[s]; ok {
		return n
	}
	return fmt.Sprintf("signal %d (%v)", int(s), s)
}
