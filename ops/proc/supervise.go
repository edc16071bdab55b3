package proc

import (
	"context"
	"fmt"
	"time"
)

// Policy says when a child that died on its own is started again. Like
// systemd's Restart=on-failure: a crash (a signal or a non-zero status)
// is restarted, a clean exit (status 0, which is how twopc's servers end
// on SIGTERM) is a stop.
type Policy struct {
	// Pause is the wait before each restart (default 1s), so that a child
	// that dies at once is not restarted in a tight loop, and a killed
	// one's peers see it gone.
	Pause time.Duration
	// Budget restarts are allowed within Window (defaults 5 and 1m); the
	// next crash inside that window ends the supervision: a child that
	// cannot stay up needs an operator, not a loop.
	Budget int
	Window time.Duration
}

func (pol *Policy) defaults() {
	if pol.Pause <= 0 {
		pol.Pause = time.Second
	}
	if pol.Budget <= 0 {
		pol.Budget = 5
	}
	if pol.Window <= 0 {
		pol.Window = time.Minute
	}
}

// Crash is one exit of a supervised child that nobody asked for.
type Crash struct {
	Name   string // the process's name
	Reason string // how it ended: "killed by SIGKILL", "exit status 2"
	// Restart numbers the restart this crash leads to (1 for the first
	// since Supervise began); 0 when the budget is spent and there is none.
	Restart int
	Pause   time.Duration // how long until the restart
}

func (c Crash) String() string {
	if c.Restart == 0 {
		return fmt.Sprintf("%s %s; not restarting: restart budget spent", c.Name, c.Reason)
	}
	return fmt.Sprintf("%s %s; restarting in %v (restart %d)", c.Name, c.Reason, c.Pause, c.Restart)
}

// Hooks let the caller watch the supervision; each may be nil. They run
// on Supervise's goroutine, so a slow hook delays the next restart.
type Hooks struct {
	Crashed   func(Crash) // before the pause and the restart
	Restarted func(Crash) // once the new child runs
}

// Supervise restarts p each time its child crashes, after pol.Pause, and
// returns when ctx ends, when the child is ended by Kill or Terminate or
// exits cleanly (nil), or when a restart fails or the budget is spent (an
// error saying why). The child must be running when it is called.
func Supervise(ctx context.Context, p *Process, pol Policy, h Hooks) error {
	pol.defaults()
	var restarts []time.Time // within the window
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-p.Done():
		}
		p.mu.Lock()
		expected, err := p.expected, p.err
		p.mu.Unlock()
		if expected || err == nil {
			return nil
		}
		now := time.Now()
		for len(restarts) > 0 && now.Sub(restarts[0]) > pol.Window {
			restarts = restarts[1:]
		}
		c := Crash{Name: p.Name(), Reason: exitText(err), Restart: n, Pause: pol.Pause}
		if len(restarts) >= pol.Budget {
			c.Restart = 0
			if h.Crashed != nil {
				h.Crashed(c)
			}
			return fmt.Errorf("%s %s: %d restarts within %v already, giving up (see %s)", c.Name, c.Reason, len(restarts), pol.Window, p.LogPath())
		}
		restarts = append(restarts, now)
		if h.Crashed != nil {
			h.Crashed(c)
		}
		p.note("%s; restarting in %v", c.Reason, pol.Pause)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pol.Pause):
		}
		if err := p.Start(); err != nil {
			return err
		}
		if h.Restarted != nil {
			h.Restarted(c)
		}
	}
}
