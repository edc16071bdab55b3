package drill

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/internal/secret"
	"github.com/twopc/twopc/ops/proc"
)

// LocalConfig describes a cluster of twopc processes on loopback.
type LocalConfig struct {
	Binary       string // the twopc executable
	Dir          string // databases, transaction log and process logs
	Participants int    // default 3
	// PrepareTimeout is the coordinator's --prepare-timeout (default 1s);
	// the drill pauses participants for longer than this.
	PrepareTimeout time.Duration
	// ResolveAfter and ResolveInterval are the participants' flags of the
	// same name (defaults 1s and 200ms: settle quickly after faults).
	ResolveAfter, ResolveInterval time.Duration
	// CoordinatorArgs are extra flags for the coordinator.
	CoordinatorArgs []string
	// StartTimeout bounds the wait for a process to serve (default 30s).
	StartTimeout time.Duration
}

func (c *LocalConfig) defaults() {
	if c.Participants == 0 {
		c.Participants = 3
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.PrepareTimeout, time.Second)
	def(&c.ResolveAfter, time.Second)
	def(&c.ResolveInterval, 200*time.Millisecond)
	def(&c.StartTimeout, 30*time.Second)
}

// LocalCluster is a coordinator and participants, each a child process of
// this one, on loopback ports chosen at start. Like twopc local, it gives
// them a random peer token, so that participants answer only calls that
// present it (the drill's do: see ParticipantHTTP).
type LocalCluster struct {
	cfg       LocalConfig
	token     string
	coord     *proc.Process
	parts     []*proc.Process
	url       string
	purls     []string
	txlog     string
	closeOnce sync.Once
}

// StartLocal starts the processes and returns once every one serves.
func StartLocal(ctx context.Context, cfg LocalConfig) (*LocalCluster, error) {
	cfg.defaults()
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	ports, err := freePorts(1 + cfg.Participants)
	if err != nil {
		return nil, err
	}
	lc := &LocalCluster{cfg: cfg, txlog: filepath.Join(cfg.Dir, "coordinator.txlog")}
	tokenFile, err := lc.writeToken()
	if err != nil {
		return nil, err
	}
	lc.url = "http://" + ports[0] + "/RPC2"
	var members []string
	for i := range cfg.Participants {
		name := fmt.Sprintf("p%d", i+1)
		u := "http://" + ports[i+1] + "/RPC2"
		lc.purls = append(lc.purls, u)
		members = append(members, name+"="+u)
		lc.parts = append(lc.parts, proc.New(proc.Spec{
			Name: name, Path: cfg.Binary, Log: filepath.Join(cfg.Dir, name+".log"),
			Args: []string{"participant", "--listen", ports[i+1], "--db", filepath.Join(cfg.Dir, name+".db"),
				"--coordinator", lc.url, "--resolve-after", cfg.ResolveAfter.String(),
				"--resolve-interval", cfg.ResolveInterval.String(), "--peer-token-file", tokenFile},
		}))
	}
	lc.coord = proc.New(proc.Spec{
		Name: "coordinator", Path: cfg.Binary, Log: filepath.Join(cfg.Dir, "coordinator.log"),
		Args: append([]string{"coordinator", "--listen", ports[0], "--participants", strings.Join(members, ","),
			"--log", lc.txlog, "--prepare-timeout", cfg.PrepareTimeout.String(), "--peer-token-file", tokenFile},
			cfg.CoordinatorArgs...),
	})
	for i := range lc.parts {
		if err := lc.start(ctx, Participant, i); err != nil {
			lc.Close()
			return nil, err
		}
	}
	if err := lc.start(ctx, Coordinator, 0); err != nil {
		lc.Close()
		return nil, err
	}
	return lc, nil
}

// freePorts asks the kernel for n distinct free loopback ports. Another
// program could take one before the child binds it; the child then fails
// to start and says so.
func freePorts(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// writeToken gives the cluster the peer token in Dir/peer.token, making
// one if there is none.
func (lc *LocalCluster) writeToken() (string, error) {
	path := filepath.Join(lc.cfg.Dir, "peer.token")
	tok, err := secret.Ensure(path)
	lc.token = tok
	return path, err
}

// ParticipantHTTP is an HTTP client that presents the peer token; Run
// uses it for its calls to participants unless Config says otherwise.
func (lc *LocalCluster) ParticipantHTTP() *http.Client { return rpc.WithToken(nil, lc.token) }

func (lc *LocalCluster) CoordinatorURL() string    { return lc.url }
func (lc *LocalCluster) ParticipantURLs() []string { return lc.purls }

// Dir is where the cluster keeps its data and process logs.
func (lc *LocalCluster) Dir() string { return lc.cfg.Dir }

func (lc *LocalCluster) process(role Role, i int) (*proc.Process, string, error) {
	if err := checkAddr(role, i, len(lc.parts)); err != nil {
		return nil, "", err
	}
	if role == Coordinator {
		return lc.coord, lc.url, nil
	}
	return lc.parts[i], lc.purls[i], nil
}

func (lc *LocalCluster) Kill(_ context.Context, role Role, i int) error {
	p, _, err := lc.process(role, i)
	if err != nil {
		return err
	}
	return p.Kill()
}

func (lc *LocalCluster) Restart(ctx context.Context, role Role, i int) error {
	return lc.start(ctx, role, i)
}

// start runs the process and waits until it answers XML-RPC, it exits,
// or StartTimeout passes.
func (lc *LocalCluster) start(ctx context.Context, role Role, i int) error {
	p, url, err := lc.process(role, i)
	if err != nil {
		return err
	}
	if err := p.Start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, lc.cfg.StartTimeout)
	defer cancel()
	c := rpc.NewClient(url, lc.ParticipantHTTP())
	for {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		_, err := c.Call(cctx, "system.listMethods")
		ccancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("drill: %s exited while starting: %v\n%s", p.Name(), p.Err(), p.Tail(2000))
		case <-ctx.Done():
			return fmt.Errorf("drill: %s not serving at %s after %v: %w (log %s)", p.Name(), url, lc.cfg.StartTimeout, err, p.LogPath())
		case <-time.After(20 * time.Millisecond): // poll interval while it binds
		}
	}
}

func (lc *LocalCluster) Pause(_ context.Context, role Role, i int) error {
	p, _, err := lc.process(role, i)
	if err != nil {
		return err
	}
	return p.Stop()
}

func (lc *LocalCluster) Resume(_ context.Context, role Role, i int) error {
	p, _, err := lc.process(role, i)
	if err != nil {
		return err
	}
	return p.Cont()
}

func (lc *LocalCluster) Healthy(context.Context) error {
	var errs []error
	for _, p := range append([]*proc.Process{lc.coord}, lc.parts...) {
		if err := p.Unexpected(); err != nil {
			errs = append(errs, err)
		} else if !p.Running() {
			errs = append(errs, fmt.Errorf("%s is not running", p.Name()))
		} else if p.Stopped() {
			errs = append(errs, fmt.Errorf("%s is paused (SIGSTOP)", p.Name()))
		}
	}
	return errors.Join(errs...)
}

func (lc *LocalCluster) ReadTxlog(context.Context) ([]byte, error) {
	return os.ReadFile(lc.txlog)
}

// Close stops every process: SIGTERM, then SIGKILL after 10 s.
func (lc *LocalCluster) Close() error {
	lc.closeOnce.Do(func() {
		lc.coord.Terminate(10 * time.Second)
		for _, p := range lc.parts {
			p.Terminate(10 * time.Second)
		}
	})
	return nil
}
