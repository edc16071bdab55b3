package launch

import (
	"context"
	"fmt"
	"time"

	"github.com/twopc/twopc/ops/proc"
	"github.com/twopc/twopc/txlog"
)

// Supervise restarts every process that crashes (proc.Supervise: after
// a pause, within a budget) and reports each event as one line, e.g.
//
//	coordinator killed by SIGKILL; restarting in 1s (restart 1); its log holds 2 unfinished transactions
//	coordinator serving again 1.02s after the crash (pid 4242); recovered 2 transactions
//
// It returns nil when ctx ends, and an error when a process spends its
// restart budget or exits cleanly without being asked to (a clean exit is
// not a crash, so it is not restarted, and the cluster is no longer
// whole).
func (c *Cluster) Supervise(ctx context.Context, pol proc.Policy, report func(string)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	names, _ := c.processes()
	errc := make(chan error, len(names))
	for _, name := range names {
		go func() {
			err := c.supervise(ctx, name, pol, report)
			if err == nil && ctx.Err() == nil {
				p := c.Process(name)
				err = fmt.Errorf("%s exited on its own (%s), which is not a crash: not restarted (see %s)", name, p.ExitReason(), p.LogPath())
			}
			errc <- err
		}()
	}
	var first error
	for range names {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel() // the cluster is not whole: stop supervising the rest
		}
	}
	return first
}

func (c *Cluster) supervise(ctx context.Context, name string, pol proc.Policy, report func(string)) error {
	p := c.Process(name)
	var crashed time.Time
	var unfinished string // what the coordinator's log held at the crash
	return proc.Supervise(ctx, p, pol, proc.Hooks{
		Crashed: func(cr proc.Crash) {
			crashed, unfinished = time.Now(), ""
			line := cr.String()
			if name == CoordinatorName {
				if st, err := txlog.Scan(c.txlog); err == nil {
					unfinished = "recovered " + count(len(st.Pending), "transaction")
					line += "; its log holds " + count(len(st.Pending), "unfinished transaction")
				}
			}
			report(line)
		},
		Restarted: func(proc.Crash) {
			if err := c.waitServing(ctx, name); err != nil {
				report(err.Error())
				return
			}
			line := fmt.Sprintf("%s serving again %v after the crash (pid %d)", name, time.Since(crashed).Round(10*time.Millisecond), p.PID())
			if unfinished != "" {
				line += "; " + unfinished
			}
			report(line)
		},
	})
}

// Wait returns nil when ctx ends, or an error naming the first process
// that exits (for a cluster that is not supervised).
func (c *Cluster) Wait(ctx context.Context) error {
	names, procs := c.processes()
	exited := make(chan string, len(names))
	for i, name := range names {
		done := procs[i].Done()
		go func() {
			select {
			case <-done:
				exited <- name
			case <-ctx.Done():
			}
		}()
	}
	select {
	case <-ctx.Done():
		return nil
	case name := <-exited:
		p := c.Process(name)
		return fmt.Errorf("%s exited unexpectedly (%s; see %s)", name, p.ExitReason(), p.LogPath())
	}
}

// count says "1 transaction", "2 transactions".
func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
