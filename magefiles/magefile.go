//go:build mage

// mage is pinned in go.mod (tool github.com/magefile/mage), so a machine
// with only Go runs every task: go tool mage -l. The operating tasks do
// their work in ops/deploy; these targets stay thin.

// Tasks to build, test and operate twopc. Hosts come from $TWOPC_INVENTORY (default deploy/inventory.json).
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/magefile/mage/mg"
	"github.com/magefile/mage/sh"

	"github.com/twopc/twopc/ops/deploy"
	"github.com/twopc/twopc/ops/drill"
)

// binary is what build writes and deploy uploads.
const binary = "bin/twopc"

// Build builds bin/twopc with its version (git describe) compiled in, saying what it compiles: the first build also compiles SQLite with gcc, which takes minutes.
func Build() error {
	version := "dev"
	if v, err := sh.Output("git", "describe", "--tags", "--always", "--dirty"); err == nil && v != "" {
		version = v
	}
	fmt.Printf("build: %s %s (go build -v: each package as it is compiled; the first build compiles SQLite with gcc, a few minutes on a small machine, later builds take seconds)\n", binary, version)
	start := time.Now()
	cmd := exec.Command("go", "build", "-v", "-trimpath", "-ldflags", "-X main.version="+version, "-o", binary, "./cmd/twopc")
	out := &prefixed{prefix: "build:   "}
	cmd.Stdout, cmd.Stderr = out, out
	// go build -v is silent while one large package compiles: a line
	// every 30 s says it is still at work.
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				fmt.Printf("build: still compiling, %v so far\n", time.Since(start).Round(time.Second))
			}
		}
	}()
	err := cmd.Run()
	close(done)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	fi, err := os.Stat(binary)
	if err != nil {
		return err
	}
	fmt.Printf("build: %s ready, %.1f MB, in %v\n", binary, float64(fi.Size())/(1<<20), time.Since(start).Round(100*time.Millisecond))
	return nil
}

// prefixed writes each line with a prefix, so that the build's output
// reads as part of the task's.
type prefixed struct {
	prefix string
	part   []byte
}

func (p *prefixed) Write(b []byte) (int, error) {
	p.part = append(p.part, b...)
	for {
		i := bytes.IndexByte(p.part, '\n')
		if i < 0 {
			return len(b), nil
		}
		fmt.Printf("%s%s\n", p.prefix, p.part[:i])
		p.part = p.part[i+1:]
	}
}

// Test runs every test with the race detector, as CI does.
func Test() error {
	return sh.RunV("go", "test", "-race", "-count=1", "-timeout", "30m", "./...")
}

// Lint runs go vet, and fails if a file is not gofmt-formatted or go.mod is not tidy.
func Lint() error {
	if err := sh.RunV("go", "vet", "./..."); err != nil {
		return err
	}
	out, err := sh.Output("gofmt", "-l", ".")
	if err != nil {
		return err
	}
	if out != "" {
		return fmt.Errorf("not gofmt-formatted (run gofmt -w):\n%s", out)
	}
	// go.mod and go.sum list exactly what the code needs, direct
	// dependencies without "// indirect".
	if out, err := sh.Output("go", "mod", "tidy", "-diff"); err != nil {
		return fmt.Errorf("go.mod is not tidy (run go mod tidy):\n%s", out)
	}
	return nil
}

// Local runs a coordinator and 3 participants on loopback, restarting any that crashes, until Ctrl-C.
func Local() error {
	mg.Deps(Build)
	return sh.RunV(binary, "local")
}

// Bench groups the benchmarks: figures, never pass/fail.
type Bench mg.Namespace

// Run drives the coordinator at $TWOPC_ADDR (default: the one mage local starts) with the four shapes etcd_bench.sh runs (put and get, 1 and 64 clients, 8-byte keys, 64-byte values), SECONDS each.
func (Bench) Run(seconds int) error {
	mg.Deps(Build)
	addr := os.Getenv("TWOPC_ADDR")
	if addr == "" {
		addr = "http://127.0.0.1:7400/RPC2"
	}
	var token []string // the participants' fsync counters need the peer token
	if os.Getenv("TWOPC_PEER_TOKEN") == "" {
		if _, err := os.Stat("twopc-data/peer.token"); err == nil {
			token = []string{"--peer-token-file", "twopc-data/peer.token"}
		}
	}
	for _, shape := range []struct {
		op      string
		clients int
	}{{"put", 1}, {"put", 64}, {"get", 1}, {"get", 64}} {
		args := append([]string{"bench", "--addr", addr, "--op", shape.op, "--clients", strconv.Itoa(shape.clients),
			"--duration", strconv.Itoa(seconds) + "s"}, token...)
		if err := sh.RunV(binary, args...); err != nil {
			return err
		}
	}
	return nil
}

// Compare runs bench/compare.sh: ROUNDS interleaved rounds of a local twopc and a 3-member etcd (../shared/peers/etcd_bench.sh, or $ETCD_BENCH), then the medians side by side, with the CPU µs per operation of every process.
func (Bench) Compare(rounds int) error {
	return sh.RunV("bash", "bench/compare.sh", strconv.Itoa(rounds))
}

// Deploy groups the deploy targets: the binary and per-host config go to
// the hosts, and whatever changed or is not running is (re)started.
type Deploy mg.Namespace

// All builds and deploys to every host of the inventory.
func (Deploy) All(ctx context.Context) error { return deployTo(ctx, "all") }

// Role builds and deploys to the hosts with a role: coordinator or participant.
func (Deploy) Role(ctx context.Context, role string) error {
	if role != deploy.RoleCoordinator && role != deploy.RoleParticipant {
		return fmt.Errorf("role %q: want coordinator or participant", role)
	}
	return deployTo(ctx, role)
}

// Host builds and deploys to one host, named as in the inventory.
func (Deploy) Host(ctx context.Context, name string) error { return deployTo(ctx, name) }

// Certs makes the TLS files the inventory names (tls_ca, each host's tls_cert and tls_key) that do not exist yet: a CA and per-host certificates, ECDSA P-256, keys 0600.
func (Deploy) Certs() error {
	inv, err := inventory()
	if err != nil {
		return err
	}
	return inv.GenerateCerts(os.Stdout)
}

func deployTo(ctx context.Context, target string) error {
	ops, err := operations()
	if err != nil {
		return err
	}
	mg.CtxDeps(ctx, Build)
	return ops.Deploy(ctx, target, binary)
}

// Participant groups the tasks that change who the participants are.
type Participant mg.Namespace

// Replace puts a participant on host NEW (add it to the inventory first) in OLD's place, each step checked: deploy NEW; add it; wait until it has caught up and is active (at most $TWOPC_REPLACE_WAIT, default 30m); remove OLD; stop OLD if it answers (it may be dead); check status and digests. Rerun it to resume.
func (Participant) Replace(ctx context.Context, old, new string) error {
	wait, err := waitEnv("TWOPC_REPLACE_WAIT", deploy.DefaultReplaceWait)
	if err != nil {
		return err
	}
	ops, err := operations()
	if err != nil {
		return err
	}
	mg.CtxDeps(ctx, Build)
	return ops.ReplaceParticipant(ctx, deploy.Replacement{Old: old, New: new, Binary: binary, Wait: wait})
}

// Coordinator groups the tasks that change who the coordinators are, with several (3 or 5 coordinator hosts in the inventory).
type Coordinator mg.Namespace

// Add adds host NEW to the group of coordinators (give it the coordinator role in the inventory first), each step checked: deploy it with --join; coordinators add; wait until it is a member that answers (at most $TWOPC_COORDINATOR_WAIT, default 2m); rewrite every config. Rerun it to resume.
func (Coordinator) Add(ctx context.Context, host string) error {
	ops, wait, err := coordinatorOps(ctx)
	if err != nil {
		return err
	}
	return ops.AddCoordinator(ctx, host, binary, wait)
}

// coordinatorOps is what adding a coordinator needs: the operations,
// the built binary, and how long to wait for the new member.
func coordinatorOps(ctx context.Context) (*deploy.Ops, time.Duration, error) {
	wait, err := waitEnv("TWOPC_COORDINATOR_WAIT", deploy.DefaultCoordinatorWait)
	if err != nil {
		return nil, 0, err
	}
	ops, err := operations()
	if err != nil {
		return nil, 0, err
	}
	mg.CtxDeps(ctx, Build)
	return ops, wait, nil
}

// Remove takes coordinator HOST out of the group for good and stops it (not while it leads: mage stop HOST/coordinator first), then rewrites every config. Rerun it to resume.
func (Coordinator) Remove(ctx context.Context, host string) error {
	return withOps(func(o *deploy.Ops) error { return o.RemoveCoordinator(ctx, host) })
}

// Replace removes coordinator OLD from the group, then adds NEW (in the inventory, move the coordinator role from OLD to NEW first).
func (Coordinator) Replace(ctx context.Context, old, new string) error {
	ops, wait, err := coordinatorOps(ctx)
	if err != nil {
		return err
	}
	return ops.ReplaceCoordinator(ctx, old, new, binary, wait)
}

// waitEnv reads a duration from the environment variable name, or def.
func waitEnv(name string, def time.Duration) (time.Duration, error) {
	s := os.Getenv(name)
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a duration such as 45m", name, s)
	}
	return d, nil
}

// Start starts what is not running on TARGET: all, a role, a host, or HOST/ROLE.
func Start(ctx context.Context, target string) error {
	return withOps(func(o *deploy.Ops) error { return o.Start(ctx, target) })
}

// Stop stops TARGET's processes (all, a role, a host, or HOST/ROLE such as db1/coordinator): SIGTERM, then SIGKILL after 15s.
func Stop(ctx context.Context, target string) error {
	return withOps(func(o *deploy.Ops) error { return o.Stop(ctx, target) })
}

// Restart stops then starts TARGET's processes: all, a role, a host, or HOST/ROLE.
func Restart(ctx context.Context, target string) error {
	return withOps(func(o *deploy.Ops) error { return o.Restart(ctx, target) })
}

// Status prints every host's processes (pid, restarts after a crash and why), versions, the coordinators' roles and leader, and the coordinator's view; fails if any is unhealthy.
func Status(ctx context.Context) error {
	return withOps(func(o *deploy.Ops) error { return o.Status(ctx) })
}

// Logs prints the last $TWOPC_LOG_LINES (default 50) log lines of TARGET's processes.
func Logs(ctx context.Context, target string) error {
	lines := 50
	if s := os.Getenv("TWOPC_LOG_LINES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("TWOPC_LOG_LINES=%q: want a positive number", s)
		}
		lines = n
	}
	return withOps(func(o *deploy.Ops) error { return o.Logs(ctx, target, lines) })
}

// Drill attacks the live cluster: SIGKILLs its coordinator KILLS times under load, restarting it each time, then checks linearizability, replicas and the txlog; its keys are deleted if it passes.
func Drill(ctx context.Context, kills int) error {
	return withCluster(ctx, func(cl *deploy.Cluster) error {
		_, err := deploy.RunDrill(ctx, cl, deploy.DrillConfig{Faults: drill.CoordinatorKills(kills, 2*time.Second),
			Duration: time.Duration(kills+1) * time.Minute, Out: os.Stdout, Grace: 5 * time.Second})
		return err
	})
}

// Chaos attacks the live cluster for DURATION: random SIGKILLs of any process and SIGSTOPs of participants, then checks linearizability, replicas and the txlog; its keys are deleted if it passes.
func Chaos(ctx context.Context, duration time.Duration) error {
	return withCluster(ctx, func(cl *deploy.Cluster) error {
		// The deployed coordinator's --prepare-timeout is the binary's
		// default, 2s: pauses last 3 to 6 s, so that prepares time out.
		_, err := deploy.RunDrill(ctx, cl, deploy.DrillConfig{Faults: drill.Chaos(2*time.Second, 2*time.Second), Duration: duration,
			Out: os.Stdout, Grace: 5 * time.Second})
		return err
	})
}

func inventory() (*deploy.Inventory, error) {
	path := os.Getenv("TWOPC_INVENTORY")
	if path == "" {
		path = "deploy/inventory.json"
	}
	return deploy.LoadInventory(path)
}

func operations() (*deploy.Ops, error) {
	inv, err := inventory()
	if err != nil {
		return nil, err
	}
	return &deploy.Ops{Inv: inv, Out: os.Stdout}, nil
}

// withCluster runs fn on the deployed cluster, reached over SSH.
func withCluster(ctx context.Context, fn func(*deploy.Cluster) error) error {
	inv, err := inventory()
	if err != nil {
		return err
	}
	cl, err := deploy.OpenCluster(ctx, inv)
	if err != nil {
		return err
	}
	defer cl.Close()
	return fn(cl)
}

func withOps(fn func(*deploy.Ops) error) error {
	ops, err := operations()
	if err != nil {
		return err
	}
	return fn(ops)
}
