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

// runLocal starts a coordinator (or several) and three participants,
// each its own process of this binary, on loopback; restarts any that
// crashes; and stops them on Ctrl-C.
func runLocal(args []string) error {
	fs := newFlags("local", "[flags]", "Run a coordinator and 3 participants on loopback, each its own process, restarting any that crashes; Ctrl-C stops them all")
	dir := fs.String("dir", "twopc-data", "folder for the databases, the transaction log and the process logs")
	port := fs.Int("port", 7400, "coordinator port; further coordinators, then the participants, use the next ones")
	coordinators := fs.Int("coordinators", 1, "how many coordinators: with several (3 or 5), one leads and the others take over if it fails")
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
	if *coordinators < 1 {
		return fmt.Errorf("--coordinators %d: want at least 1", *coordinators)
	}
	cfg := launch.Config{Binary: self, Dir: *dir, Port: *port, Coordinators: *coordinators}
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
	label, coords := "coordinator", []string{c.CoordinatorURL()}
	if len(c.Coordinators()) > 1 {
		label, coords = "coordinators", nil
		for _, n := range c.Coordinators() {
			coords = append(coords, n+"="+c.URL(n))
		}
	}
	for _, n := range append(c.Coordinators(), c.Participants()...) {
		pids = append(pids, fmt.Sprintf("%s=%d", n, c.Process(n).PID()))
	}
	kill := "the coordinator: it is restarted and recovers"
	if len(coords) > 1 {
		kill = "a coordinator: if it led, another takes over within a second; it is restarted and follows"
	}
	fmt.Printf(`twopc local cluster is up: %s %s, participants %s
data and process logs in %s/; pids %s

Try it:
  twopc put hello world && twopc get hello        (or: go run ./cmd/twopc put hello world)
  python3 -c 'import xmlrpc.client as x; s = x.ServerProxy("%s"); s.put("hello", "world"); print(s.get("hello"))'
  twopc status
  kill -9 %d    (%s; --no-restart to stop instead)

Participants accept calls only with the peer token in %s/peer.token.
Ctrl-C stops everything.
`, label, strings.Join(coords, ","), strings.Join(parts, ","), *dir, strings.Join(pids, " "), c.CoordinatorURL(), c.Process(c.Coordinator()).PID(), kill, *dir)

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
