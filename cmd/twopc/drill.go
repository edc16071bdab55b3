package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twopc/twopc/ops/drill"
	"github.com/twopc/twopc/ops/launch"
)

// runDrill attacks a cluster with load and faults and checks it; see
// package drill.
func runDrill(args []string) error {
	fs := newFlags("drill", "[flags]", "Run random put/get/delete and txn from concurrent clients (or, with --bank, transfers and audits) while killing and pausing processes and faulting the network between them, then check linearizability, replicas, prepared records and the txlog")
	seed := fs.Uint64("seed", 0, "seed of the operations and of the fault schedule; 0 picks one at random (printed)")
	duration := fs.Duration("duration", time.Minute, "how long the load and the faults run")
	clients := fs.Int("clients", 8, "concurrent clients")
	keys := fs.Int("keys", 8, "number of keys (few keys: many conflicts)")
	bank := fs.Bool("bank", false, "run the bank drill instead: transfers between accounts with version compares, audits that read every account in one transaction; the total must never change")
	accounts := fs.Int("accounts", 5, "with --bank: number of accounts")
	txnRatio := fs.Float64("txn-ratio", 0.3, "share of operations that are multi-key transactions with compares; 0 for put/get/delete only")
	keyGroup := fs.Int("key-group", 3, "most keys one transaction spans: transactions draw their keys from groups of this many, which the checker checks one by one")
	every := fs.Duration("fault-every", 2*time.Second, "mean gap between faults; 0 for no faults")
	maxDown := fs.Duration("max-down", time.Second, "longest a killed process stays down")
	coordinators := fs.Int("coordinators", 1, "with the local cluster: how many coordinators (3: one leads; kill-coordinator becomes kill-leader, pause-leader, kill-follower and lose-follower, and --network adds partitions of the leader from the participants and from the other coordinators)")
	network := fs.Bool("network", true, "with the local cluster: put fault proxies between the coordinator and each participant, and delay, black-hole and cut the traffic between them, overlapping the faults on processes (--network=false: processes only)")
	lose := fs.Bool("lose-participants", false, "with the local cluster: also lose participants (SIGKILL, delete the database, restart empty) for them to catch up; "+
		"runs the coordinator with --exclude-after "+loseExcludeAfter.String())
	prepare := fs.Duration("prepare-timeout", time.Second, "the local coordinator's --prepare-timeout; pauses last 1.5x to 3x this")
	settle := fs.Duration("settle-timeout", time.Minute, "how long the cluster may take to finish everything after the load stops")
	checkTimeout := fs.Duration("check-timeout", 5*time.Minute, "how long the linearizability search may take; past it the verdict is UNKNOWN, not a pass")
	checkMemory := byteSize(drill.DefaultCheckMemory())
	fs.Var(&checkMemory, "check-memory", "most resident memory the linearizability search may take, e.g. 4GiB (default: half of this machine's); "+
		"past it the search, which runs in a child process, is stopped and the verdict is UNKNOWN, not a pass; 0 for no bound")
	dir := fs.String("dir", "", "folder for the local cluster's data and logs and the drill's output (default: a new temporary folder)")
	coordURL := fs.String("coordinator", "", "target this running coordinator instead of starting a cluster (no faults: they need process control)")
	partURLs := fs.String("participants", "", "with --coordinator: the participants, comma-separated NAME=URL (as the coordinator's --participants) or URLs")
	tokenFile := fs.String("token-file", "", "with --coordinator: file holding the coordinator's client token (or set "+envClientToken+")")
	peerTokenFile := fs.String("peer-token-file", "", "with --coordinator: file holding the participants' peer token (or set "+envPeerToken+")")
	tlsCA := fs.String("tls-ca", "", "with --coordinator: CA certificates (PEM file) the cluster's HTTPS certificates chain to")
	check := fs.String("check", "", "only check this history file (history.jsonl of an earlier drill) for linearizability")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *check != "" {
		return checkHistory(*check, *checkTimeout, int64(checkMemory))
	}
	if *seed == 0 {
		*seed = rand.Uint64()
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "twopc-drill-")
		if err != nil {
			return err
		}
		*dir = d
	}
	log := newLogger("drill")
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	var cl drill.Cluster
	var coordHC, partHC *http.Client
	if *coordURL != "" {
		if *partURLs == "" {
			return errors.New("--coordinator needs --participants")
		}
		cl = drill.NewStatic(*coordURL, strings.Split(*partURLs, ","))
		*every = 0
		var err error
		if coordHC, err = drillHTTPClient(*tokenFile, envClientToken, *tlsCA); err != nil {
			return err
		}
		if partHC, err = drillHTTPClient(*peerTokenFile, envPeerToken, *tlsCA); err != nil {
			return err
		}
	} else {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		var coordArgs []string
		if *lose {
			// A lost participant must be excluded before it comes back
			// empty (see drill.LoseParticipant).
			coordArgs = []string{"--exclude-after", loseExcludeAfter.String()}
		}
		lc, err := launch.Start(ctx, launch.Config{Binary: self, Dir: filepath.Join(*dir, "cluster"),
			PrepareTimeout: *prepare, ResolveAfter: time.Second, ResolveInterval: 200 * time.Millisecond,
			NetworkFaults: *network, CoordinatorArgs: coordArgs, Coordinators: *coordinators})
		if err != nil {
			return err
		}
		cl, coordHC, partHC = lc, lc.ClientHTTP(), lc.PeerHTTP()
		log.Info("local cluster up", "coordinator", lc.CoordinatorURL(), "dir", lc.Dir())
	}
	defer cl.Close()
	nCoordinators := len(cl.Coordinators()) // before lose-follower faults change the list

	faults := drill.Chaos(*every, *prepare)
	faults.MaxDown = *maxDown
	if *network {
		faults = faults.With(drill.NetworkFaults...)
	}
	if *lose {
		faults = faults.With(drill.LoseParticipant)
		faults.LoseWait = *settle
	}
	faults = faults.ForCoordinators(nCoordinators)
	faults.LeaderWait = *settle // as the README says: a takeover is waited for as long as settling
	nAccounts := 0
	if *bank {
		nAccounts = *accounts
	}
	res, err := drill.Run(ctx, cl, drill.Config{Bank: nAccounts,
		Seed: *seed, Duration: *duration, Clients: *clients, Keys: *keys, TxnRatio: orNone(*txnRatio), KeyGroup: *keyGroup, SettleTimeout: *settle, CheckTimeout: *checkTimeout,
		CheckMemory:     orNone(int64(checkMemory)),
		Faults:          faults,
		CoordinatorHTTP: coordHC, ParticipantHTTP: partHC, OutDir: *dir, Log: log,
	})
	res.Report(os.Stdout)
	if err != nil {
		return fmt.Errorf("drill could not run (seed %d): %w", *seed, err)
	}
	if res.Passed() {
		return nil
	}
	fmt.Printf("process logs and data: %s\n", *dir)
	load := fmt.Sprintf("--keys %d --txn-ratio %v --key-group %d", *keys, *txnRatio, *keyGroup)
	if *bank {
		load = fmt.Sprintf("--bank --accounts %d", *accounts)
	}
	fmt.Printf("reproduce: twopc drill --seed %d --duration %v --clients %d %s --fault-every %v --max-down %v --network=%v --lose-participants=%v --coordinators %d\n",
		*seed, *duration, *clients, load, *every, *maxDown, *network, *lose, nCoordinators)
	if len(res.Violations) == 0 {
		return fmt.Errorf("not proved: %s (seed %d)", notProved(res.Verdict, *checkTimeout, res.HistoryPath), *seed)
	}
	return fmt.Errorf("%d violations (seed %d)", len(res.Violations), *seed)
}

// loseExcludeAfter is the coordinator's --exclude-after when the drill
// loses participants: short, so that a lost one is excluded soon.
const loseExcludeAfter = time.Second

// orNone is a flag's value as drill.Config takes it: 0 there means the
// default, so "none" (0 here) is negative.
func orNone[T int64 | float64](v T) T {
	if v <= 0 {
		return -1
	}
	return v
}

// notProved says what stopped the linearizability search of v, and how
// to try again on the history in path.
func notProved(v drill.Verdict, timeout time.Duration, path string) string {
	var why []string
	if v.TimedOut {
		why = append(why, fmt.Sprintf("timed out after %v (try longer: twopc drill --check %s --check-timeout 1h)", timeout, path))
	}
	if v.OutOfMemory > 0 {
		why = append(why, fmt.Sprintf("reached its memory bound of %d MiB and was stopped (with more memory: twopc drill --check %s --check-memory %dMiB)",
			v.OutOfMemory>>20, path, 2*v.OutOfMemory>>20))
	}
	return "the linearizability check " + strings.Join(why, ", and ")
}

// checkHistory runs the checker alone on a recorded history.
func checkHistory(path string, timeout time.Duration, memory int64) error {
	h, err := drill.ReadHistory(path)
	if err != nil {
		return err
	}
	start := time.Now()
	v, err := drill.CheckBounded(h, timeout, memory)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d records: %v, in %v\n", path, len(h.Ops), v, time.Since(start).Round(time.Millisecond))
	var errs []error
	if bank, violations := drill.CheckBank(h); bank.Accounts > 0 {
		fmt.Println(bank)
		for _, v := range violations {
			fmt.Println("violation:", v)
		}
		if len(violations) > 0 {
			errs = append(errs, fmt.Errorf("history %s breaks the bank's invariant", path))
		}
	}
	switch {
	case v.Illegal():
		fmt.Printf("keys not linearizable: %q\n", v.BadKeys)
		html := strings.TrimSuffix(path, filepath.Ext(path)) + ".html"
		switch err := v.Visualize(html); {
		case errors.Is(err, drill.ErrOutOfMemory):
			fmt.Printf("no visualization: %v\n", err)
		case err != nil:
			return err
		default:
			fmt.Printf("visualization: %s\n", html)
		}
		errs = append(errs, fmt.Errorf("history %s is not linearizable", path))
	case !v.Linearizable():
		errs = append(errs, fmt.Errorf("history %s: nothing proved: %s", path, notProved(v, timeout, path)))
	}
	return errors.Join(errs...)
}

// drillHTTPClient is an HTTP client that presents the token from file (or
// env) and trusts ca, for calls to a cluster the drill did not start.
func drillHTTPClient(file, env, ca string) (*http.Client, error) {
	token, err := loadSecret(file, env)
	if err != nil {
		return nil, err
	}
	return (&security{tlsCA: ca}).httpClient(token)
}

// byteSize is a flag of a size in bytes, with a unit: 512MiB, 4GiB.
type byteSize int64

func (b byteSize) String() string { return fmt.Sprintf("%dMiB", b>>20) }

func (b *byteSize) Set(s string) error {
	num, mult := s, 1.0
	for i, unit := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if n, ok := strings.CutSuffix(s, unit); ok {
			num, mult = n, float64(int64(1)<<(10*(i+1)))
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return fmt.Errorf("%q is not a size such as 4GiB", s)
	}
	*b = byteSize(f * mult)
	return nil
}
