package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/twopc/twopc/ops/proc"
)

// runSupervise runs this binary with ARGS as a child and restarts it when
// it crashes: the background service mode of the SSH deploy, which has no
// systemd to do it. See proc.Supervise for what counts as a crash.
func runSupervise(args []string) error {
	fs := newFlags("supervise", "[flags] -- COMMAND [FLAGS]", "Run 'twopc COMMAND FLAGS' and restart it when it crashes (a signal or a non-zero exit), within a restart budget; SIGTERM stops both")
	name := fs.String("name", "", "what to call the child in messages (default: COMMAND)")
	pidfile := fs.String("pidfile", "", "file to hold the child's pid, rewritten at every restart")
	stateFile := fs.String("state", "", "file to hold the restart count and the last reason, one line: N REASON")
	logFile := fs.String("log", "/dev/stderr", "file the child's output is appended to")
	pol := proc.Policy{}
	fs.DurationVar(&pol.Pause, "restart-pause", time.Second, "wait this long before a restart")
	fs.IntVar(&pol.Budget, "max-restarts", 5, "give up after this many restarts within --within")
	fs.DurationVar(&pol.Window, "within", time.Minute, "the window of --max-restarts")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("nothing to supervise: want -- COMMAND [FLAGS]")
	}
	if *name == "" {
		*name = fs.Arg(0)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	log := newLogger("supervise")
	// If the supervisor dies, its child is stopped cleanly rather than
	// left running unsupervised.
	p := proc.New(proc.Spec{Name: *name, Path: self, Args: fs.Args(), Log: *logFile, DeathSignal: syscall.SIGTERM})
	started := func(restarts int, reason string) error {
		if err := writeAtomic(*pidfile, fmt.Sprintf("%d\n", p.PID())); err != nil {
			return err
		}
		return writeAtomic(*stateFile, fmt.Sprintf("%d %s\n", restarts, reason))
	}
	if err := p.Start(); err != nil {
		return err
	}
	if err := started(0, "-"); err != nil {
		p.Terminate(15 * time.Second)
		return err
	}
	log.Info("supervising", "child", *name, "pid", p.PID(), "max_restarts", pol.Budget, "within", pol.Window)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var restarts int
	var last string
	err = proc.Supervise(ctx, p, pol, proc.Hooks{
		Crashed: func(c proc.Crash) {
			last = c.Reason
			if c.Restart == 0 {
				log.Error(c.String())
				writeAtomic(*stateFile, fmt.Sprintf("%d gave up after %s\n", restarts, c.Reason))
				return
			}
			log.Warn(c.String())
		},
		Restarted: func(c proc.Crash) {
			restarts = c.Restart
			log.Info("restarted", "child", *name, "pid", p.PID(), "restart", c.Restart)
			if err := started(restarts, last); err != nil {
				log.Error("writing the pidfile", "err", err)
			}
		},
	})
	if ctx.Err() != nil {
		log.Info("stopping", "child", *name)
		return p.Terminate(15 * time.Second)
	}
	if err == nil && !p.Running() {
		log.Info("child exited cleanly; not restarting", "child", *name, "exit", p.ExitReason())
	}
	return err
}

// writeAtomic replaces path with data (a temporary file renamed over
// it), so that a reader sees the old content or the new, never half; an
// empty path writes nothing.
func writeAtomic(path, data string) error {
	if path == "" {
		return nil
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
