package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/internal/secret"
	"github.com/twopc/twopc/ops/proc"
)

// runLocal starts a coordinator and three participants, each its own
// process of this binary, on loopback, and stops them on Ctrl-C.
func runLocal(args []string) error {
	fs := newFlags("local", "[flags]", "Run a coordinator and 3 participants on loopback, each its own process; Ctrl-C stops them all")
	dir := fs.String("dir", "twopc-data", "folder for the databases, the transaction log and the process logs")
	port := fs.Int("port", 7400, "coordinator port; participants use the next three")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *port < 1 || *port > 65535-3 {
		return fmt.Errorf("--port %d: want 1-%d (the participants take the next three)", *port, 65535-3)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tokenFile, err := peerTokenFile(*dir)
	if err != nil {
		return err
	}
	coordURL := fmt.Sprintf("http://127.0.0.1:%d/RPC2", *port)
	var parts string
	var procs []*proc.Process
	spec := func(name string, args ...string) *proc.Process {
		// If this process dies, its children must not outlive it; SIGTERM
		// lets them shut down cleanly.
		return proc.New(proc.Spec{Name: name, Path: self, Args: args, Log: filepath.Join(*dir, name+".log"), DeathSignal: syscall.SIGTERM})
	}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("p%d", i)
		addr := "127.0.0.1:" + strconv.Itoa(*port+i)
		if parts != "" {
			parts += ","
		}
		parts += name + "=http://" + addr + "/RPC2"
		procs = append(procs, spec(name, "participant",
			"--listen", addr, "--db", filepath.Join(*dir, name+".db"), "--coordinator", coordURL,
			"--peer-token-file", tokenFile))
	}
	procs = append(procs, spec("coordinator", "coordinator",
		"--listen", "127.0.0.1:"+strconv.Itoa(*port), "--participants", parts,
		"--log", filepath.Join(*dir, "coordinator.txlog"), "--peer-token-file", tokenFile))

	exited := make(chan *proc.Process, len(procs))
	defer stopAll(procs)
	for _, p := range procs {
		if err := p.Start(); err != nil {
			return err
		}
		go func() { <-p.Done(); exited <- p }()
	}
	if err := waitReady(coordURL, 30*time.Second, exited); err != nil {
		return err
	}
	fmt.Printf(`twopc local cluster is up: coordinator %s, participants %s
data and process logs in %s/

Try it:
  twopc put hello world && twopc get hello        (or: go run ./cmd/twopc put hello world)
  python3 -c 'import xmlrpc.client as x; s = x.ServerProxy("%s"); s.put("hello", "world"); print(s.get("hello"))'
  twopc status

Participants accept calls only with the peer token in %s.
Ctrl-C stops everything.
`, coordURL, parts, *dir, coordURL, tokenFile)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
		fmt.Println("\nstopping...")
		return nil
	case p := <-exited:
		return fmt.Errorf("%s exited unexpectedly: %v (see %s)", p.Name(), p.Err(), p.LogPath())
	}
}

// stopAll sends SIGTERM to every process still running and waits for it
// to exit, up to 10 s, then kills it.
func stopAll(procs []*proc.Process) {
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() { p.Terminate(10 * time.Second) })
	}
	wg.Wait()
}

// waitReady polls the coordinator until it answers status or a process
// exits, up to timeout.
func waitReady(url string, timeout time.Duration, exited <-chan *proc.Process) error {
	deadline := time.Now().Add(timeout)
	c := rpc.NewClient(url, nil)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Call(ctx, "status")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case p := <-exited:
			return fmt.Errorf("%s exited during start: %v (see %s)", p.Name(), p.Err(), p.LogPath())
		default:
		}
		if time.Now().After(deadline) {
			return errors.Join(fmt.Errorf("coordinator not ready after %v", timeout), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// peerTokenFile returns dir/peer.token, creating it with a random token
// (mode 0600) the first time, so that even a local cluster's participants
// answer only their coordinator.
func peerTokenFile(dir string) (string, error) {
	path := filepath.Join(dir, "peer.token")
	_, err := secret.Ensure(path)
	return path, err
}
