package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twopc/twopc/ops/launch"
	"github.com/twopc/twopc/ops/proc"
)

// runLocal starts a coordinator and three participants, each its own
// process of this binary, on loopback; restarts any that crashes; and
// stops them on Ctrl-C.
func runLocal(args []string) error {
	fs := newFlags("local", "[flags]", "Run a coordinator and 3 participants on loopback, each its own process, restarting any that crashes; Ctrl-C stops them all")
	dir := fs.String("dir", "twopc-data", "folder for the databases, the transaction log and the process logs")
	port := fs.Int("port", 7400, "coordinator port; participants use the next three")
	noRestart := fs.Bool("no-restart", false, "stop the whole cluster when a process dies, instead of restarting it")
	pause := fs.Duration("restart-pause", time.Second, "wait this long before restarting a process that died")
	excludeAfter := fs.Duration("exclude-after", 5*time.Second, "the coordinator's --exclude-after: exclude a participant silent this long, so that writes go on without it, until it catches up (0: never)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg := launch.Config{Binary: self, Dir: *dir, Port: *port}
	cfg.CoordinatorArgs = []string{"--exclude-after", excludeAfter.String()}
	c, err := launch.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	var parts, pids []string
	for _, n := range c.Participants() {
		parts = append(parts, n+"="+c.URL(n))
	}
	for _, n := range append([]string{c.Coordinator()}, c.Participants()...) {
		pids = append(pids, fmt.Sprintf("%s=%d", n, c.Process(n).PID()))
	}
	fmt.Printf(`twopc local cluster is up: coordinator %s, participants %s
data and process logs in %s/; pids %s

Try it:
  twopc put hello world && twopc get hello        (or: go run ./cmd/twopc put hello world)
  python3 -c 'import xmlrpc.client as x; s = x.ServerProxy("%s"); s.put("hello", "world"); print(s.get("hello"))'
  twopc status
  kill -9 %d    (the coordinator: it is restarted and recovers; --no-restart to stop instead)

Participants accept calls only with the peer token in %s/peer.token.
Ctrl-C stops everything.
`, c.CoordinatorURL(), strings.Join(parts, ","), *dir, strings.Join(pids, " "), c.CoordinatorURL(), c.Process(c.Coordinator()).PID(), *dir)

	if *noRestart {
		err = c.Wait(ctx)
	} else {
		err = c.Supervise(ctx, proc.Policy{Pause: *pause}, func(line string) {
			fmt.Printf("%s %s\n", time.Now().Format("15:04:05"), line)
		})
	}
	if ctx.Err() != nil {
		fmt.Println("\nstopping...")
	}
	return err
}
