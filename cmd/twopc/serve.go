package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twopc/twopc/api"
	"github.com/twopc/twopc/coordinator"
	"github.com/twopc/twopc/internal/httpserve"
	"github.com/twopc/twopc/internal/logging"
	"github.com/twopc/twopc/internal/metrics"
	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/internal/web"
	"github.com/twopc/twopc/participant"
	"github.com/twopc/twopc/peer"
	"github.com/twopc/twopc/protocol"
	"github.com/twopc/twopc/txlog"
)

const (
	defaultCoordinator  = "127.0.0.1:7400"
	defaultParticipants = "p1=http://127.0.0.1:7401/RPC2,p2=http://127.0.0.1:7402/RPC2,p3=http://127.0.0.1:7403/RPC2"
)

func runCoordinator(args []string) error {
	started := time.Now()
	fs := newFlags("coordinator", "[flags]", "Serve the public XML-RPC API (put, get, delete, txn, status) and drive two-phase commit across the participants")
	listen := fs.String("listen", defaultCoordinator, "address to serve on: XML-RPC (POST / and /RPC2), the status page (GET /), /metrics, /healthz and /readyz")
	parts := fs.String("participants", defaultParticipants, "participants as comma-separated NAME=URL")
	logPath := fs.String("log", "twopc-data/coordinator.txlog", "transaction log file (created if missing); with --coordinators, the replicated (raft) log")
	coordinators := fs.String("coordinators", "", "run as one of several coordinators, as comma-separated NAME=URL of each one's XML-RPC endpoint "+
		"(the same list for all; this one's included): one leads, the others forward to it and take over if it fails. Default: a coordinator of its own")
	name := fs.String("name", "", "this coordinator's name in --coordinators")
	maxProcs := maxProcsFlag(fs, "Where the coordinator shares a few cores with its participants, fewer Ps cost less CPU per call "+
		"(threads hand work to each other less): twopc local gives it the cores its participants' single Ps leave, at least 1")
	followerProcs := fs.Int("follower-max-procs", 0, "with --coordinators: CPUs that run this process's Go code at once (GOMAXPROCS) while it does not lead; "+
		"0 keeps Go's choice. A follower only stores the log and forwards requests; where the coordinators share a few cores, "+
		"1 spares the CPU that threads handing work to each other cost, and the leader gets the cores (twopc local uses 1)")
	join := fs.Bool("join", false, "with --coordinators and an empty log: this coordinator is being added to a group that exists "+
		"(twopc coordinators add): wait for the leader to send the log, rather than found a new group")
	prepare := fs.Duration("prepare-timeout", 2*time.Second, "longest wait for every participant's vote before aborting with 'unavailable'")
	excludeAfter := fs.Duration("exclude-after", 5*time.Second, "exclude a participant from the write set after this long without an answer, so that writes go on without it (0: never); "+
		"once it answers again it catches up and rejoins by itself")
	minParticipants := fs.Int("min-participants", 0, "fewest participants the write set keeps: none is excluded below it (0: a majority of the participants)")
	lockWait := fs.Duration("lock-timeout", 2*time.Second, "longest wait for a key another write holds before failing with 'conflict'")
	callTimeout := fs.Duration("call-timeout", 2*time.Second, "timeout of one commit, abort or read call to a participant")
	cacheBytes := fs.Int64("read-cache-bytes", 32<<20, "memory for values of recent writes, served to gets without a participant (0: off)")
	compactBytes := fs.Int64("compact-bytes", txlog.DefaultCompactBytes, "compact the transaction log when it grows past this size and is mostly finished transactions")
	lim := api.DefaultLimits()
	fs.IntVar(&lim.MaxKeyBytes, "max-key-bytes", lim.MaxKeyBytes, "largest key accepted")
	fs.IntVar(&lim.MaxValueBytes, "max-value-bytes", lim.MaxValueBytes, "largest value accepted")
	fs.IntVar(&lim.MaxCompares, "max-compares", lim.MaxCompares, "most compares in one txn")
	fs.IntVar(&lim.MaxOps, "max-ops", lim.MaxOps, "most ops in one branch of a txn")
	maxResult := fs.Int("max-result-bytes", participant.DefaultMaxResultBytes, "most bytes of values one txn's gets may return (fault 4 past it, nothing written); give participants the same")
	rlim := rpc.DefaultLimits()
	fs.Int64Var(&rlim.MaxBodyBytes, "max-body-bytes", rlim.MaxBodyBytes, "largest request body accepted")
	limitFlags(fs, &rlim)
	clientTokenFile := fs.String("client-token-file", "", "require clients to present the token in this file (or set "+envClientToken+"); default: no client token")
	sec := securityFlags(fs)
	pprofAddr := pprofFlag(fs)
	logFormat := logFormatFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	log, err := newServerLogger("coordinator", *logFormat)
	if err != nil {
		return err
	}
	setMaxProcs(*maxProcs) // before a group's leader takes GOMAXPROCS as its own
	setMemoryLimit(rlim, *cacheBytes+64<<20)
	peerToken, hc, err := sec.setup(*listen)
	if err != nil {
		return err
	}
	clientToken, err := loadSecret(*clientTokenFile, envClientToken)
	if err != nil {
		return err
	}
	// Checked now, so that a bad flag fails the start.
	_, err = parseParticipants(*parts)
	if err != nil {
		return err
	}
	logAuth(log, peerToken != "", clientToken != "", sec.tlsCert != "")
	servePprof(log, *pprofAddr)

	if err := os.MkdirAll(filepath.Dir(*logPath), 0o755); err != nil {
		return err
	}
	calls, err := sec.callClient(peerToken)
	if err != nil {
		return err
	}
	cs := &coordServer{
		log: log, started: started, hc: hc, calls: calls, parts: *parts, lim: lim, rlim: rlim, followerProcs: *followerProcs,
		peerSecret: rpc.NewSecret(peerToken), clientSecret: rpc.NewSecret(clientToken),
		metrics: metrics.NewCoordinator(),
		base: coordinator.Config{
			PrepareTimeout: *prepare, LockTimeout: *lockWait, CallTimeout: *callTimeout, ReadCacheBytes: *cacheBytes,
			ExcludeAfter: *excludeAfter, MinParticipants: *minParticipants,
			MaxResultBytes: *maxResult, Logger: log,
		},
	}
	cs.base.Observer = cs.metrics
	if *coordinators != "" {
		return cs.serveGroup(*name, *coordinators, *logPath, *listen, *join, sec)
	}
	tl, state, err := txlog.Open(*logPath, txlog.Options{CompactBytes: *compactBytes, ObserveFsync: cs.metrics.ObserveFsync, SyncInKernel: true})
	if err != nil {
		return err
	}
	defer tl.Close()
	if state.TornTail != nil {
		log.Warn("cut a torn tail off the transaction log", "offset", state.TornTail.Offset, "bytes", state.TornTail.Bytes, "copy", state.TornTail.CopyPath)
	}
	epoch := state.Epoch + 1
	if err := tl.Append(protocol.Record{Kind: protocol.KindEpoch, Epoch: epoch}); err != nil {
		return err
	}
	c, err := cs.newCoordinator(tl, epoch, state, "")
	if err != nil {
		return err
	}
	defer c.Close()
	log.Info("recovered", "log", *logPath, "epoch", epoch, "commits_to_finish", len(state.Pending))
	api := cs.apiHandler(c)
	return serve(log, *listen, cs.webHandler(api, c.Status, c.Pending, nil), api, sec)
}

// coordServer is what a coordinator process builds its coordinator (or,
// one of several, each term's) and its HTTP handlers from.
type coordServer struct {
	log                      *slog.Logger
	started                  time.Time
	hc                       *http.Client // to other coordinators, and for catch-up
	calls                    *http.Client // to participants: prepares, commits, aborts, reads
	parts                    string
	lim                      api.Limits
	rlim                     rpc.Limits
	peerSecret, clientSecret rpc.Secret
	metrics                  *metrics.Coordinator
	base                     coordinator.Config // all but members, log and state
	followerProcs            int                // GOMAXPROCS while another coordinator leads (0: unchanged)
}

// newCoordinator starts a coordinator incarnation from a log's state.
func (cs *coordServer) newCoordinator(log coordinator.DecisionLog, epoch uint64, state *txlog.State, name string) (*coordinator.Coordinator, error) {
	members, err := parseParticipants(cs.parts)
	if err != nil {
		return nil, err
	}
	// This coordinator's term is its epoch: every call to a participant
	// carries it, so that once a later incarnation (or leader) has
	// called, this one can change nothing there (fencing:
	// participant/doc.go).
	for i := range members {
		members[i].Participant = peer.NewClient(members[i].URL, cs.calls, epoch)
	}
	cfg := cs.base
	cfg.Name, cfg.Members, cfg.Log, cfg.Epoch = name, members, log, epoch
	cfg.Pending, cfg.Excluded, cfg.Joined, cfg.Removed = state.Pending, state.Excluded, joinedMembers(state.Joined), state.Removed
	cfg.Dial = func(url string) (coordinator.Participant, error) { return peer.NewClient(url, cs.calls, epoch), nil }
	return coordinator.New(cfg)
}

// apiHandler serves c's public XML-RPC API.
func (cs *coordServer) apiHandler(c *coordinator.Coordinator) *rpc.Server {
	srv := rpc.NewServer(cs.rlim, cs.log)
	api.Register(srv, c, cs.lim)
	srv.SetAuthorizer(api.Authorizer(cs.peerSecret, cs.clientSecret))
	// Before a body is read: the client token (when set) admits any
	// request, the peer token only small ones, because all it lets a
	// caller do is tx.outcome; a request with neither is refused unread.
	srv.SetCredentials(rpc.Credential{Secret: cs.clientSecret}, rpc.Credential{Secret: cs.peerSecret, MaxBodyBytes: peerOnlyBodyBytes})
	srv.SetObserver(cs.metrics.ObserveCall)
	return srv
}

// webHandler serves rpcHandler with the status page, metrics and health
// checks; raft, if set, receives the other coordinators' raft messages.
func (cs *coordServer) webHandler(rpcHandler http.Handler, statusOf func(context.Context) coordinator.Status,
	pending func(context.Context) []coordinator.PendingTx, raft http.Handler) http.Handler {
	status := web.SharedStatus(statusOf, time.Second)
	cs.metrics.Watch(status)
	h := web.New(web.Config{
		RPC: rpcHandler, Metrics: cs.metrics.Handler(), Ready: web.CoordinatorReadiness(status),
		Page: web.NewPage(web.PageConfig{Status: status, Pending: pending,
			Started: cs.started, Version: versionString()}),
		PageToken: cs.clientSecret,
	})
	if raft == nil {
		return h
	}
	mux := http.NewServeMux()
	mux.Handle("/raft", requirePeer(cs.peerSecret, raft))
	mux.Handle("/", h)
	return mux
}

// requirePeer lets through requests that present the peer token (all,
// when none is set).
func requirePeer(secret rpc.Secret, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if secret.IsSet() && !secret.Check(rpc.PresentedToken(r)) {
			http.Error(w, "raft messages need the peer token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// joinedMembers are the participants an operator added, as the log has them.
func joinedMembers(js []txlog.Joined) []coordinator.Joined {
	out := make([]coordinator.Joined, len(js))
	for i, j := range js {
		out[i] = coordinator.Joined{Name: j.Name, URL: j.URL}
	}
	return out
}

// parseParticipants reads "p1=http://...,p2=https://...", before the
// epoch is known: the clients, which carry it, are made later.
func parseParticipants(s string) ([]coordinator.Member, error) {
	var out []coordinator.Member
	for _, part := range strings.Split(s, ",") {
		name, url, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || name == "" || !strings.HasPrefix(url, "http") {
			return nil, fmt.Errorf("--participants: %q is not NAME=http://HOST:PORT/RPC2", part)
		}
		if strings.ContainsAny(name, " \t,") {
			return nil, fmt.Errorf("--participants: name %q must not contain spaces or commas", name)
		}
		out = append(out, coordinator.Member{Name: name, URL: url})
	}
	return out, nil
}

// parseCoordinators reads --coordinator: "http://...,https://...".
func parseCoordinators(s string) ([]string, error) {
	var out []string
	for _, u := range strings.Split(s, ",") {
		u = strings.TrimSpace(u)
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil, fmt.Errorf("--coordinator: %q is not http(s)://HOST:PORT/RPC2", u)
		}
		out = append(out, u)
	}
	return out, nil
}

func runParticipant(args []string) error {
	fs := newFlags("participant", "[flags]", "Serve one SQLite replica to a coordinator")
	listen := fs.String("listen", "127.0.0.1:7401", "address to serve on: XML-RPC (POST / and /RPC2), /metrics, /healthz and /readyz")
	db := fs.String("db", "twopc-data/p1.db", "SQLite database file (created if missing)")
	coord := fs.String("coordinator", "http://"+defaultCoordinator+"/RPC2", "coordinator URLs, comma-separated: every coordinator, asked in turn (from the last that answered) for the outcome of transactions left prepared")
	after := fs.Duration("resolve-after", 5*time.Second, "ask the coordinator about a transaction prepared this long without a decision")
	every := fs.Duration("resolve-interval", time.Second, "how often to look for such transactions")
	maxResult := fs.Int("max-result-bytes", participant.DefaultMaxResultBytes, "most bytes of values one txn's gets may return here; past it the vote is NO (too large)")
	kvCache := fs.Int("kv-cache-bytes", participant.DefaultKVCacheBytes, "memory for the entries of recently used keys, so that a prepare reads them without a SQLite query (0: off)")
	maxProcs := maxProcsFlag(fs, "Every write goes through one goroutine, so 1 costs little and, where several servers share a few cores, "+
		"spares the CPU that threads handing work to each other cost (twopc local uses 1)")
	plim := rpc.DefaultLimits()
	plim.MaxBodyBytes, plim.MaxReplyBytes, plim.MaxInflightBytes = participantBodyBytes, participantReplyBytes, participantInflightBytes
	fs.Int64Var(&plim.MaxBodyBytes, "max-body-bytes", plim.MaxBodyBytes,
		"largest request body accepted; the default fits the coordinator's largest batch with its default limits: "+
			"if you raise its --max-value-bytes, make this at least 5 x (1 MiB + that) + 1 MiB")
	limitFlags(fs, &plim)
	sec := securityFlags(fs)
	pprofAddr := pprofFlag(fs)
	logFormat := logFormatFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	coordURLs, err := parseCoordinators(*coord)
	if err != nil {
		return err
	}
	log, err := newServerLogger("participant", *logFormat)
	if err != nil {
		return err
	}
	setMaxProcs(*maxProcs)
	// SQLite's own memory is outside Go's heap: leave it room under 128 MB.
	// The kv cache's 24 MiB fit in the rest: counting them on top let the
	// heap grow to 100-102 MB of RSS in bench/compare.sh (82-84 without).
	setMemoryLimit(plim, 40<<20)
	peerToken, hc, err := sec.setup(*listen)
	if err != nil {
		return err
	}
	logAuth(log, peerToken != "", false, sec.tlsCert != "")
	servePprof(log, *pprofAddr)
	if err := os.MkdirAll(filepath.Dir(*db), 0o755); err != nil {
		return err
	}
	m := metrics.NewParticipant()
	if *kvCache <= 0 {
		*kvCache = -1 // Options: off
	}
	store, err := participant.Open(*db, participant.Options{Logger: log, MaxResultBytes: *maxResult, KVCacheBytes: *kvCache, ObserveCommit: m.ObserveCommit, ObserveBatch: m.ObserveBatch, ObserveApplyStep: m.ObserveApplyStep, OnFail: func(err error) {
		// Serving errors forever would leave keys locked and commits in
		// doubt; a restart reloads the state from disk.
		log.Error("database write failed; exiting so that a restart can recover", "err", err)
		os.Exit(2)
	}})
	if err != nil {
		return err
	}
	defer store.Close()
	m.Watch(store.Stats)
	if n := store.Stats().Prepared; n > 0 {
		log.Info("reloaded prepared transactions; their keys stay locked until resolved", "count", n)
	}
	asks := make([]participant.Resolver, len(coordURLs))
	for i, u := range coordURLs {
		asks[i] = peer.NewOutcomeClient(u, hc)
	}
	resolver := participant.NewCoordinators(asks...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go store.RunResolver(ctx, resolver, *every, *after)

	srv := rpc.NewServer(plim, log)
	peer.Register(srv, store)
	// Only the coordinator (the peer token) may call; anyone else is
	// refused before the body is read.
	srv.SetCredentials(rpc.Credential{Secret: rpc.NewSecret(peerToken)})
	srv.SetObserver(m.ObserveCall)
	srv.AcceptStreams() // the coordinator's calls (internal/rpc/stream.go)
	return serve(log, *listen, web.New(web.Config{RPC: srv, Metrics: m.Handler(), Ready: web.StoreReadiness(store)}), srv, sec, srv.CloseStreams)
}

// serve runs h on addr (over TLS when sec has a certificate) until SIGINT
// or SIGTERM, then shuts down cleanly. Plain HTTP to a TLS port is told to
// use https. calls is the handler h routes XML-RPC calls to, which serves
// them without h's routing.
func serve(log *slog.Logger, addr string, h, calls http.Handler, sec *security, closeStreams ...func(context.Context)) error {
	certFile, keyFile, err := sec.tlsFiles()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: h,
		// A client that sends slowly, or never finishes, is cut off.
		ReadHeaderTimeout: min(5*time.Second, sec.readTimeout),
		ReadTimeout:       sec.readTimeout,
		WriteTimeout:      sec.readTimeout + 60*time.Second,
		IdleTimeout:       sec.idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if certFile != "" {
		// Load now, so that a bad certificate fails the start, not the
		// first client.
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = web.TLSListener(ln, srv.TLSConfig)
		scheme = "https"
	}
	// Client calls are served in their connection's goroutine; pages,
	// metrics and upgrades by net/http (internal/httpserve).
	here := &httpserve.Server{HTTP: srv, Paths: []string{"/RPC2", "/"}, Calls: calls}
	errc := make(chan error, 1)
	go func() { errc <- here.Serve(ln) }()
	log.Info("serving", "url", scheme+"://"+ln.Addr().String()+"/RPC2", "version", versionString())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case err := <-errc:
		return err
	case s := <-sig:
		log.Info("shutting down", "signal", s.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Streams are hijacked connections, which Shutdown leaves alone:
	// they stop taking calls at the same time, and are waited for too.
	var wg sync.WaitGroup
	for _, f := range closeStreams {
		wg.Go(func() { f(ctx) })
	}
	err = here.Shutdown(ctx)
	wg.Wait()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// tuneGC trades some memory for CPU: the servers' live heaps are a few
// MB, so Go's default (collect when the heap doubles) runs the collector
// often under load. 200 (collect at three times what is live) rather than
// more: at 400 the coordinator's resident memory reached 80-101 MB in
// the benchmarks, at 200 56-57 MB, for no CPU per op that showed past
// the machine's noise. An explicit GOGC still wins.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
}

// maxProcsFlag is a server's --max-procs, with why to set it.
func maxProcsFlag(fs *flag.FlagSet, why string) *int {
	return fs.Int("max-procs", 0, "CPUs that run this process's Go code at once (GOMAXPROCS); 0 keeps Go's choice. "+why)
}

func setMaxProcs(n int) {
	if n > 0 {
		runtime.GOMAXPROCS(n)
	}
}

func logFormatFlag(fs *flag.FlagSet) *string {
	return fs.String("log-format", "text", "log lines as "+strings.Join(logging.Formats, " or ")+" (field names are the same in every process: txid, keys, participant, term)")
}

// newLogger returns a text logger for a command that is not a server.
func newLogger(role string) *slog.Logger {
	l, _ := newServerLogger(role, "text") // text is a known format
	return l
}

// newServerLogger returns a server's logger, which it passes to every
// package it uses.
func newServerLogger(role, format string) (*slog.Logger, error) {
	tuneGC()
	l, err := logging.New(os.Stderr, format, role)
	if err != nil {
		return nil, err
	}
	// A client can make the server log a line (a refused request, say):
	// at most 10 lines of a kind per 10 s, so that repeating it cannot
	// fill the disk.
	l = slog.New(logging.RateLimit(l.Handler(), 10*time.Second, 10))
	// Only for the participant package's resolver and writer, which still
	// log through the global default: their lines then keep the format.
	slog.SetDefault(l)
	return l, nil
}
