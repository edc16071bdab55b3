package launch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twopc/twopc/internal/faultproxy"
	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/internal/secret"
	"github.com/twopc/twopc/ops/proc"
)

// CoordinatorName is the coordinator's name among a cluster's processes.
const CoordinatorName = "coordinator"

// Config describes a cluster on loopback.
type Config struct {
	Binary       string // the twopc executable
	Dir          string // data, transaction log, process logs, peer token
	Participants int    // default 3
	// Coordinators is how many coordinators run (default 1). Several
	// are called c1, c2, ...: one leads, the others forward to it.
	Coordinators int
	// Port is the coordinator's port, and the participants take the next
	// ones; 0 lets the kernel choose free ports.
	Port int
	// PrepareTimeout, ResolveAfter and ResolveInterval set the servers'
	// flags of the same names; zero keeps the binary's defaults. A drill
	// wants them short, so that the cluster settles quickly after faults.
	PrepareTimeout, ResolveAfter, ResolveInterval time.Duration
	// CoordinatorArgs and ParticipantArgs are more flags for each role.
	CoordinatorArgs, ParticipantArgs []string
	// ClientTokenFile, if set, makes the coordinator demand that token
	// from clients (ClientHTTP presents it).
	ClientTokenFile string
	// TLS, if set, serves every process over HTTPS.
	TLS *TLS
	// StartTimeout bounds the wait for one process to serve (default 30s).
	StartTimeout time.Duration
	// NetworkFaults puts fault proxies between each coordinator and each
	// participant, and between every two coordinators (links.go), so
	// that LinkFault can delay, black-hole or cut the traffic between
	// them.
	NetworkFaults bool
}

// TLS names the PEM files of a cluster served over HTTPS: one
// certificate (for 127.0.0.1) shared by every process, and the CA it
// chains to, which the processes and this package's clients trust.
type TLS struct{ CA, Cert, Key string }

// Cluster is a running local cluster.
type Cluster struct {
	cfg      Config
	procs    map[string]*proc.Process
	names    []string // coordinators first, then the participants in order
	coords   []string // the coordinators' names
	coordArg string   // a participant's --coordinator: every coordinator's URL
	urls     map[string]string
	txlog    string
	peer     *http.Client              // presents the peer token
	client   *http.Client              // presents the client token, if any
	parts    []string                  // the participants' names
	links    map[pair]*faultproxy.Link // nil without Config.NetworkFaults
	addrs    map[string]string         // each process's own address (not its links')
	removed  []string                  // coordinators lost (LoseCoordinator): never a name again
	once     sync.Once
	// mu guards coords, names, urls, procs, links and removed, which
	// LoseCoordinator and AddCoordinator change while a drill runs.
	mu sync.RWMutex
}

// Start starts the cluster and returns once every process serves.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Participants <= 0 {
		cfg.Participants = 3
	}
	if cfg.Coordinators <= 0 {
		cfg.Coordinators = 1
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	addrs, err := ports(cfg.Port, cfg.Coordinators+cfg.Participants)
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, procs: map[string]*proc.Process{}, urls: map[string]string{}, names: []string{},
		txlog: filepath.Join(cfg.Dir, "coordinator.txlog")}
	if err := c.clients(); err != nil {
		return nil, err
	}
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
	}
	common := join([]string{"--peer-token-file", c.peerTokenFile()}, c.tlsArgs())
	url := func(addr string) string { return scheme + "://" + addr + "/RPC2" }
	byName := map[string]string{} // each process's own address
	c.addrs = byName
	for i := range cfg.Coordinators {
		name := CoordinatorName
		if cfg.Coordinators > 1 {
			name = "c" + strconv.Itoa(i+1)
		}
		c.coords = append(c.coords, name)
		byName[name] = addrs[i]
	}
	for i := 1; i <= cfg.Participants; i++ {
		name := "p" + strconv.Itoa(i)
		c.parts = append(c.parts, name)
		byName[name] = addrs[cfg.Coordinators+i-1]
	}
	if cfg.NetworkFaults {
		if err := c.startLinks(byName); err != nil {
			c.closeLinks()
			return nil, err
		}
	}
	var coordURLs []string
	for _, name := range c.coords {
		coordURLs = append(coordURLs, url(byName[name]))
	}
	c.coordArg = strings.Join(coordURLs, ",")
	// Each process calls each other one at its end of their link, if
	// any: its --participants, --coordinators or --coordinator name
	// addresses of its own.
	for _, name := range c.parts {
		var toCoords []string
		for _, co := range c.coords {
			toCoords = append(toCoords, url(c.via(name, co, byName)))
		}
		// One P each: the processes share this machine's cores, and a
		// participant's writes run on one goroutine (see --max-procs).
		c.add(name, url(byName[name]), join(
			[]string{"participant", "--listen", byName[name], "--db", c.dbPath(name), "--coordinator", strings.Join(toCoords, ","), "--max-procs", "1"},
			durationFlag("--resolve-after", cfg.ResolveAfter), durationFlag("--resolve-interval", cfg.ResolveInterval),
			common, cfg.ParticipantArgs))
	}
	for i, name := range c.coords {
		var members, group []string
		for _, p := range c.parts {
			members = append(members, p+"="+url(c.via(name, p, byName)))
		}
		for _, co := range c.coords {
			group = append(group, co+"="+url(c.via(name, co, byName)))
		}
		coordArgs := join([]string{"coordinator", "--listen", byName[name], "--participants", strings.Join(members, ","), "--log", c.TxlogPathOf(name)},
			coordinatorProcs(len(c.parts)), durationFlag("--prepare-timeout", cfg.PrepareTimeout), common, cfg.CoordinatorArgs)
		if cfg.Coordinators > 1 {
			// A follower on one P too: the leader needs the cores (see
			// --follower-max-procs).
			coordArgs = append(coordArgs, "--name", name, "--coordinators", strings.Join(group, ","), "--follower-max-procs", "1")
		}
		if cfg.ClientTokenFile != "" {
			coordArgs = append(coordArgs, "--client-token-file", cfg.ClientTokenFile)
		}
		c.add(name, coordURLs[i], coordArgs)
	}
	// Participants first, so that the coordinators find them serving.
	for _, name := range append(c.Participants(), c.coords...) {
		if err := c.start(ctx, name); err != nil {
			c.Close()
			return nil, err
		}
	}
	if len(c.coords) > 1 {
		if err := c.waitLeader(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// waitLeader waits until the coordinators have elected one that serves.
func (c *Cluster) waitLeader(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	rc := rpc.NewClient(c.CoordinatorURL(), c.client)
	for {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		_, err := rc.Call(cctx, "status")
		ccancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("launch: no coordinator leads after %v: %w", c.cfg.StartTimeout, err)
		case <-time.After(20 * time.Millisecond): // poll interval while they elect
		}
	}
}

// add makes the process; names lists the coordinators first, then the
// participants in the order they are added.
// The caller holds mu, or is Start.
func (c *Cluster) add(name, url string, args []string) {
	if slices.Contains(c.coords, name) {
		c.names = slices.Insert(c.names, slices.Index(c.coords, name), name)
	} else {
		c.names = append(c.names, name)
	}
	c.urls[name] = url
	// SIGTERM if this process dies: the children shut down cleanly.
	c.procs[name] = proc.New(proc.Spec{Name: name, Path: c.cfg.Binary, Args: args,
		Log: filepath.Join(c.cfg.Dir, name+".log"), DeathSignal: syscall.SIGTERM})
}

// clients makes the peer token (if there is none yet) and the HTTP
// clients that present the tokens and trust the cluster's CA.
func (c *Cluster) clients() error {
	peerToken, err := secret.Ensure(c.peerTokenFile())
	if err != nil {
		return fmt.Errorf("launch: peer token: %w", err)
	}
	clientToken, err := secret.Load(c.cfg.ClientTokenFile, "")
	if err != nil {
		return fmt.Errorf("launch: client token: %w", err)
	}
	hc := rpc.NewHTTPClient()
	if t := c.cfg.TLS; t != nil {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return fmt.Errorf("launch: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("launch: no PEM certificate in %s", t.CA)
		}
		hc.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	c.peer, c.client = rpc.WithToken(hc, peerToken), rpc.WithToken(hc, clientToken)
	return nil
}

// peerTokenFile holds the peer token every process presents.
func (c *Cluster) peerTokenFile() string { return filepath.Join(c.cfg.Dir, "peer.token") }

// tlsArgs are a server's TLS flags, if the cluster serves HTTPS.
func (c *Cluster) tlsArgs() []string {
	if t := c.cfg.TLS; t != nil {
		return []string{"--tls-cert", t.Cert, "--tls-key", t.Key, "--tls-ca", t.CA}
	}
	return nil
}

func join(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// coordinatorProcs is a coordinator's --max-procs: the cores its
// participants' single Ps leave, at least one, unless GOMAXPROCS is set
// (which then wins, as it would without this flag). On 2 cores a
// coordinator with one P instead of two spent 9-14% less CPU per put at
// 64 clients and served 1-6% more puts (two bench/slices.sh runs): with
// two, its threads woke each other (and Go's sysmon) more than they ran
// in parallel.
func coordinatorProcs(participants int) []string {
	if os.Getenv("GOMAXPROCS") != "" {
		return nil
	}
	return []string{"--max-procs", strconv.Itoa(max(1, runtime.NumCPU()-participants))}
}

func durationFlag(flag string, d time.Duration) []string {
	if d <= 0 {
		return nil
	}
	return []string{flag, d.String()}
}

// ports returns n loopback addresses: from base on, or free ones when
// base is 0. Another program could take a free port before the child
// binds it; the child then fails to start and says so.
func ports(base, n int) ([]string, error) {
	if base != 0 {
		if base < 1 || base > 65535-(n-1) {
			return nil, fmt.Errorf("port %d: want 1-%d (the participants take the next %d)", base, 65535-(n-1), n-1)
		}
		var out []string
		for i := range n {
			out = append(out, "127.0.0.1:"+strconv.Itoa(base+i))
		}
		return out, nil
	}
	var out []string
	for range n {
		ln, err := listenFree()
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// listenFree listens on a free loopback port below the kernel's
// ephemeral range where it can. The kernel hands out ports of that range
// to every outgoing connection and every listen on port 0, so a port
// picked there is often taken by one of them before the child binds it
// (a drill failed to start so: "address already in use"); below it, only
// a program asking for that very port can take it.
func listenFree() (net.Listener, error) {
	low := 32768 // Linux's default, if the kernel does not say
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	const from = 20000
	for range 100 {
		if low <= from {
			break
		}
		if ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(from+rand.IntN(low-from))); err == nil {
			return ln, nil
		}
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// Coordinator is the (first) coordinator's name.
func (c *Cluster) Coordinator() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.coords[0]
}

// Coordinators are the coordinators' names: "coordinator", or c1, c2,
// ... (less those lost, and those added since: see AddCoordinator).
func (c *Cluster) Coordinators() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.coords)
}

func (c *Cluster) isCoordinator(name string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Contains(c.coords, name)
}

// Participants are the participants' names, as the coordinator knows
// them: p1, p2, ...
func (c *Cluster) Participants() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.names[len(c.coords):])
}

// URL is the XML-RPC URL of the process called name.
func (c *Cluster) URL(name string) string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.urls[name]
}

// CoordinatorURL is the (first) coordinator's XML-RPC URL; any
// coordinator serves clients.
func (c *Cluster) CoordinatorURL() string { return c.URL(c.Coordinator()) }

// ParticipantURLs are the participants' URLs, in the order of Participants.
func (c *Cluster) ParticipantURLs() []string {
	var out []string
	for _, n := range c.Participants() {
		out = append(out, c.URL(n))
	}
	return out
}

// PeerHTTP presents the peer token (and trusts the cluster's CA): for
// calls to participants.
func (c *Cluster) PeerHTTP() *http.Client { return c.peer }

// ClientHTTP presents the client token, if the coordinator wants one
// (and trusts the cluster's CA): for calls to the coordinator.
func (c *Cluster) ClientHTTP() *http.Client { return c.client }

// Dir is the cluster's folder.
func (c *Cluster) Dir() string { return c.cfg.Dir }

// TxlogPath is the (first) coordinator's transaction log.
func (c *Cluster) TxlogPath() string { return c.TxlogPathOf(c.Coordinator()) }

// TxlogPathOf is the named coordinator's transaction log (with several,
// its copy of the replicated log).
func (c *Cluster) TxlogPathOf(name string) string {
	if name == CoordinatorName {
		return c.txlog
	}
	return filepath.Join(c.cfg.Dir, name+".txlog")
}

// Process is the process called name, or nil.
func (c *Cluster) Process(name string) *proc.Process {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.procs[name]
}

func (c *Cluster) process(name string) (*proc.Process, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if p := c.procs[name]; p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("launch: no process %q (have %s)", name, strings.Join(c.names, ", "))
}

// start runs the process and waits until it answers XML-RPC, it exits, or
// StartTimeout passes.
func (c *Cluster) start(ctx context.Context, name string) error {
	p, err := c.process(name)
	if err != nil {
		return err
	}
	if err := p.Start(); err != nil {
		return err
	}
	return c.waitServing(ctx, name)
}

// waitServing polls the process called name until it answers.
func (c *Cluster) waitServing(ctx context.Context, name string) error {
	p, err := c.process(name)
	if err != nil {
		return err
	}
	url := c.URL(name)
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	hc := c.peer
	if c.isCoordinator(name) {
		hc = c.client
	}
	rc := rpc.NewClient(url, hc)
	for {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		_, err := rc.Call(cctx, "system.listMethods")
		ccancel()
		var f *rpc.Fault
		if err == nil || errors.As(err, &f) {
			return nil // it answers (one of several coordinators before an election: with a fault)
		}
		select {
		case <-p.Done():
			return fmt.Errorf("launch: %s exited while starting: %v\n%s", name, p.Err(), p.Tail(2000))
		case <-ctx.Done():
			return fmt.Errorf("launch: %s not serving at %s after %v: %w (log %s)", name, url, c.cfg.StartTimeout, err, p.LogPath())
		case <-time.After(20 * time.Millisecond): // poll interval while it binds
		}
	}
}

// Kill sends SIGKILL to the process and returns once it is gone.
func (c *Cluster) Kill(_ context.Context, name string) error {
	p, err := c.process(name)
	if err != nil {
		return err
	}
	return p.Kill()
}

// Restart starts a killed process again and waits until it serves.
func (c *Cluster) Restart(ctx context.Context, name string) error { return c.start(ctx, name) }

// Pause sends SIGSTOP; Resume sends SIGCONT.
func (c *Cluster) Pause(_ context.Context, name string) error {
	p, err := c.process(name)
	if err != nil {
		return err
	}
	return p.Stop()
}

func (c *Cluster) Resume(_ context.Context, name string) error {
	p, err := c.process(name)
	if err != nil {
		return err
	}
	return p.Cont()
}

// Healthy returns nil if every process runs and is not paused; otherwise
// it names each that is not, and any that exited without being killed.
func (c *Cluster) Healthy(context.Context) error {
	var errs []error
	names, procs := c.processes()
	for i, name := range names {
		p := procs[i]
		if err := p.Unexpected(); err != nil {
			errs = append(errs, err)
		} else if !p.Running() {
			errs = append(errs, fmt.Errorf("%s is not running", name))
		} else if p.Stopped() {
			errs = append(errs, fmt.Errorf("%s is paused (SIGSTOP)", name))
		}
	}
	return errors.Join(errs...)
}

// ReadTxlog returns the named coordinator's transaction log (with
// several, its copy of the raft log) as it is now.
func (c *Cluster) ReadTxlog(_ context.Context, name string) ([]byte, error) {
	if !c.isCoordinator(name) {
		return nil, fmt.Errorf("launch: no coordinator %q (have %v)", name, c.Coordinators())
	}
	return os.ReadFile(c.TxlogPathOf(name))
}

// Tail returns up to the last n bytes of the process's log.
func (c *Cluster) Tail(name string, n int) string {
	if p := c.Process(name); p != nil {
		return p.Tail(n)
	}
	return ""
}

// processes are the names of the processes, coordinators first, and
// the processes, in the same order.
func (c *Cluster) processes() ([]string, []*proc.Process) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var ps []*proc.Process
	for _, name := range c.names {
		ps = append(ps, c.procs[name])
	}
	return slices.Clone(c.names), ps
}

// Close stops every process, the coordinator first: SIGTERM, then SIGKILL
// after 10 s. It is idempotent.
func (c *Cluster) Close() error {
	c.once.Do(func() {
		var wg sync.WaitGroup
		for _, name := range c.Coordinators() {
			p := c.Process(name)
			wg.Go(func() { p.Terminate(10 * time.Second) })
		}
		wg.Wait()
		for _, name := range c.Participants() {
			p := c.Process(name)
			wg.Go(func() { p.Terminate(10 * time.Second) })
		}
		wg.Wait()
		c.closeLinks()
	})
	return nil
}
