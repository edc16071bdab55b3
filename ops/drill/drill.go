package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twopc/twopc/txlog"
)

// Config is one drill.
type Config struct {
	Seed     uint64        // fixes each client's operations and the fault schedule
	Duration time.Duration // how long the load runs
	Clients  int           // concurrent clients (default 8)
	Keys     int           // size of the key space (default 8: writes conflict)
	// TxnRatio is the share of the load's operations that are
	// transactions (default 0.3; negative: none, only put/get/delete,
	// which the checker then checks key by key).
	TxnRatio float64
	// KeyGroup is the most keys one transaction spans (default 3). The
	// keys are cut into groups of this many and a transaction draws its
	// keys from one group, so that the checker can check each group on
	// its own: a history over linked keys costs it time exponential in
	// the worst case, and memory quadratic in its length (see doc.go).
	KeyGroup int
	// Bank, if positive, runs the bank drill over this many accounts
	// instead of the random load (see bank.go): transfers that keep the
	// total, audits that check it. Keys and TxnRatio do not apply.
	Bank int
	// KeyPrefix starts every key the drill uses, so that its keys are
	// absent when it starts even on a cluster that holds data (the model
	// assumes so), and easy to find. Default: "drill-" and the start
	// time, e.g. "drill-20261201-145803.123-". A drill that passes
	// deletes its keys; one that fails keeps them, for study.
	KeyPrefix string
	// OpTimeout bounds one call; a call cut off by it has an Unknown
	// outcome (default 10s, well past prepare and lock timeouts).
	OpTimeout time.Duration
	Faults    FaultConfig
	// SettleTimeout bounds the wait, after the load, for the cluster to
	// finish everything the faults left (default 60s).
	SettleTimeout time.Duration
	// CheckTimeout bounds porcupine's search (default 5m); past it the
	// result is Unknown, which the drill reports as UNKNOWN, never as a
	// pass.
	CheckTimeout time.Duration
	// CheckMemory bounds the resident memory of porcupine's search, in
	// bytes (default DefaultCheckMemory, half of this machine's; negative:
	// no bound). Past it the search is stopped and the result is Unknown,
	// as past CheckTimeout (see CheckBounded).
	CheckMemory int64
	// TxlogLimit is the largest the coordinator's log may be once settled
	// (default txlog.DefaultCompactBytes plus 64 KiB for the last batch).
	TxlogLimit int64
	// CoordinatorHTTP and ParticipantHTTP carry the drill's calls to the
	// coordinator (the load, status, final writes) and to participants
	// (prepared, digest, final reads); ParticipantHTTP, which presents
	// the peer token, also a lose-follower's coordinators.add and
	// coordinators.remove. Set them to present a token or trust
	// a CA (launch.Cluster's ClientHTTP and PeerHTTP do); nil means plain
	// HTTP clients.
	CoordinatorHTTP, ParticipantHTTP *http.Client
	// OutDir receives history.jsonl always, and linearizability.html on a
	// violation (default: a new temporary folder).
	OutDir string
	Log    *slog.Logger // progress; default slog.Default()
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Clients <= 0 {
		c.Clients = 8
	}
	if c.Keys <= 0 {
		c.Keys = 8
	}
	switch {
	case c.TxnRatio == 0:
		c.TxnRatio = 0.3
	case c.TxnRatio < 0:
		c.TxnRatio = 0
	}
	if c.KeyGroup <= 0 {
		c.KeyGroup = 3
	}
	if c.Bank == 1 {
		c.Bank = 2 // a transfer needs two accounts
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = "drill-" + time.Now().UTC().Format("20060102-150405.000") + "-"
	}
	def(&c.OpTimeout, 10*time.Second)
	def(&c.SettleTimeout, 60*time.Second)
	def(&c.CheckTimeout, 5*time.Minute)
	if c.CheckMemory == 0 {
		c.CheckMemory = DefaultCheckMemory()
	}
	if c.TxlogLimit <= 0 {
		c.TxlogLimit = txlog.DefaultCompactBytes + 64<<10
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Result is what a drill found.
type Result struct {
	Seed                uint64
	Ops                 int // operations the clients completed (any outcome)
	OK, Failed, Unknown int
	UnexpectedFaults    int
	Faults              map[FaultKind]int // by kind: every kind the drill was to inject, and only those
	FaultsAtOnce        int               // the most faults that were under way at once
	Violations          []string          // empty: the cluster kept every promise checked
	Linearizability     string            // porcupine's result, and what it took
	Verdict             Verdict           // Check's, in full
	Checked             bool              // the checks ran (false: the drill stopped early)
	// Undecided: the linearizability search ran out of time (CheckTimeout)
	// or memory (CheckMemory) on some keys (Verdict.Stopped says which).
	// That proves nothing either way, so the drill does not pass; it is
	// not a violation either.
	Undecided bool
	Bank      *BankTally // a bank drill's transfers and audits
	// Terms is what the participants said of fencing at the end: their
	// terms, and their refusals of stale ones (nil if not read).
	Terms *Terms
	// Takeovers counts the faults on the leader after which another
	// coordinator was seen leading in a higher term.
	Takeovers         int
	Txlog             string // what the final log looked like
	Keys              string // what became of the drill's keys: deleted, or where they are
	Duration          time.Duration
	HistoryPath       string
	VisualizationPath string // set only when porcupine found a violation
}

// Passed reports whether the drill ran its checks, and they proved that
// the cluster kept every promise they check.
func (r Result) Passed() bool { return r.Checked && len(r.Violations) == 0 && !r.Undecided }

// Summary is the one line a drill prints.
func (r Result) Summary() string {
	var faults []string
	for _, k := range FaultKinds {
		if n, ok := r.Faults[k]; ok {
			faults = append(faults, fmt.Sprintf("%s=%d", k, n))
		}
	}
	if r.FaultsAtOnce > 1 {
		faults = append(faults, fmt.Sprintf("(up to %d at once)", r.FaultsAtOnce))
	}
	verdict := "PASS"
	switch {
	case !r.Checked:
		verdict = "NOT CHECKED"
	case len(r.Violations) > 0:
		verdict = fmt.Sprintf("FAIL (%d violations)", len(r.Violations))
	case r.Undecided:
		verdict = "UNKNOWN (the linearizability check " + r.Verdict.Stopped() + ")"
	}
	bank := ""
	if r.Bank != nil {
		bank = fmt.Sprintf(" transfers: ok=%d failed=%d unknown=%d retried=%d audits: ok=%d bad=%d",
			r.Bank.TransfersOK, r.Bank.TransfersFailed, r.Bank.TransfersUnknown, r.Bank.TransfersRetried, r.Bank.AuditsOK, r.Bank.BadAudits)
	}
	if r.Takeovers > 0 {
		faults = append(faults, fmt.Sprintf("(%d takeovers)", r.Takeovers))
	}
	terms := ""
	if r.Terms != nil {
		terms = " " + r.Terms.String()
	}
	return fmt.Sprintf("drill seed=%d ops=%d (ok=%d failed=%d unknown=%d)%s faults: %s%s result=%s duration=%v",
		r.Seed, r.Ops, r.OK, r.Failed, r.Unknown, bank, strings.Join(faults, " "), terms, verdict, r.Duration.Round(time.Second))
}

// Report prints the summary line, then what a reader needs to follow it
// up: the linearizability result and the txlog, each violation, and where
// the history (and on a violation, its visualization) is.
func (r Result) Report(w io.Writer) {
	fmt.Fprintln(w, r.Summary())
	if r.Linearizability != "" {
		fmt.Fprintf(w, "linearizability: %s; %s\n", r.Linearizability, r.Txlog)
	}
	if r.Bank != nil {
		fmt.Fprintln(w, r.Bank)
	}
	for _, v := range r.Violations {
		fmt.Fprintln(w, "violation:", v)
	}
	if r.Keys != "" {
		fmt.Fprintln(w, "keys:", r.Keys)
	}
	if r.HistoryPath != "" {
		fmt.Fprintln(w, "history:", r.HistoryPath)
	}
	if r.VisualizationPath != "" {
		fmt.Fprintln(w, "visualization:", r.VisualizationPath)
	}
}

// Run drives load and faults against cl for cfg.Duration (or until
// cfg.Faults.Limit faults are over), waits for the cluster to settle, and
// checks it. The error is for a drill that could
// not be carried out (a process would not restart, a file could not be
// written); what the cluster did wrong is in Result.Violations.
func Run(ctx context.Context, cl Cluster, cfg Config) (res Result, err error) {
	cfg.defaults()
	began := time.Now()
	res.Seed = cfg.Seed
	defer func() {
		res.Duration = time.Since(began)
		if res.Keys == "" { // stopped before its checks
			res.Keys = fmt.Sprintf("left under the prefix %q", cfg.KeyPrefix)
		}
	}()
	if cfg.OutDir == "" {
		dir, err := os.MkdirTemp("", fmt.Sprintf("twopc-drill-%d-", cfg.Seed))
		if err != nil {
			return res, err
		}
		cfg.OutDir = dir
	} else if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return res, err
	}
	violate := func(format string, args ...any) {
		v := fmt.Sprintf(format, args...)
		res.Violations = append(res.Violations, v)
		cfg.Log.Error("drill: violation", "what", v)
	}

	rec := newRecorder()
	keys := make([]string, cfg.Keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("%sk%d", cfg.KeyPrefix, i)
	}
	if cfg.Bank > 0 {
		keys = make([]string, cfg.Bank)
		for i := range keys {
			keys[i] = fmt.Sprintf("%sacct%d", cfg.KeyPrefix, i)
		}
	}
	ld := &load{urls: coordinatorURLs(cl), hc: cfg.CoordinatorHTTP, clients: cfg.Clients, keys: keys, groups: slices.Collect(slices.Chunk(keys, cfg.KeyGroup)),
		txnRatio: cfg.TxnRatio, seed: cfg.Seed, opTimeout: cfg.OpTimeout, rec: rec}
	ld.nextClient.Store(int64(cfg.Clients))
	work := ld.run
	if cfg.Bank > 0 {
		b := &bank{load: ld, balance: bankBalance, auditPct: 20, quietEvery: 5 * time.Second}
		if err := b.createAccounts(ctx, cfg.SettleTimeout); err != nil {
			return res, err
		}
		work = b.run
	}
	if err := cfg.Faults.fits(len(cl.Coordinators())); err != nil {
		return res, err
	}
	if err := canFaultLinks(ctx, cl, cfg.Faults); err != nil {
		return res, err
	}
	if _, ok := cl.(CoordinatorLoser); !ok && cfg.Faults.Every > 0 && slices.Contains(cfg.Faults.Kinds, LoseFollower) {
		return res, fmt.Errorf("drill: this cluster cannot replace a coordinator (leave out %s): %w", LoseFollower, errors.ErrUnsupported)
	}
	probe := Probe{Cluster: cl, CoordinatorHTTP: cfg.CoordinatorHTTP, ParticipantHTTP: cfg.ParticipantHTTP}
	fl := newFaulter(cfg.Seed, cfg.Faults, cl, rec, watch{members: probe.states, leader: probe.leader, refusals: probe.refusals,
		change: probe.changeGroup, group: probe.group, leaderOf: probe.leaderOf})
	fl.coordinatorsChanged = func() { ld.setURLs(coordinatorURLs(cl)) }
	cfg.Log.Info("drill: load and faults", "seed", cfg.Seed, "duration", cfg.Duration, "clients", cfg.Clients, "keys", len(keys), "bank", cfg.Bank > 0, "out", cfg.OutDir)
	runCtx, stop := context.WithTimeout(ctx, cfg.Duration)
	var wg sync.WaitGroup
	var faultErr error
	wg.Go(func() { work(runCtx) })
	wg.Go(func() {
		// Past its Limit, unable to drive the cluster, or having found
		// it failing, the faulter ends the load too.
		faultErr = fl.run(runCtx)
		if _, _, found := fl.tally(); faultErr != nil || cfg.Faults.Limit > 0 || len(found) > 0 {
			stop()
		}
	})
	wg.Wait()
	stop()
	var findings []string
	res.Faults, res.FaultsAtOnce, findings = fl.tally()
	res.UnexpectedFaults = int(ld.unexpFaults.Load())
	res.count(rec.history().Ops)
	if faultErr != nil {
		return res, faultErr
	}
	if ctx.Err() != nil {
		// Interrupted: the cluster was not given its chance to settle, so
		// checking it would report violations that are not there. The
		// history is still worth keeping.
		res.HistoryPath = filepath.Join(cfg.OutDir, "history.jsonl")
		return res, errors.Join(fmt.Errorf("drill: interrupted: %w", ctx.Err()), WriteHistory(res.HistoryPath, rec.history()))
	}
	for _, f := range findings {
		violate("%s", f)
	}
	if res.UnexpectedFaults > 0 {
		violate("%d calls got a fault or reply the API does not document for them (see history, outcome unknown, err \"unexpected ...\")", res.UnexpectedFaults)
	}

	cfg.Log.Info("drill: load stopped; waiting for the cluster to settle")
	highest, takeovers, refusals := fl.terms()
	res.Takeovers = takeovers
	res.Txlog, res.Terms = checkCluster(ctx, cl, cfg, keys, rec, int(ld.nextClient.Load()), highest, refusals, violate)

	h := rec.history()
	res.HistoryPath = filepath.Join(cfg.OutDir, "history.jsonl")
	if err := WriteHistory(res.HistoryPath, h); err != nil {
		return res, err
	}
	cfg.Log.Info("drill: checking linearizability", "ops", len(h.Ops))
	checking := time.Now()
	v, err := CheckBounded(h, cfg.CheckTimeout, cfg.CheckMemory)
	if err != nil {
		return res, err
	}
	res.Linearizability = fmt.Sprintf("%v, in %v", v, time.Since(checking).Round(time.Millisecond))
	res.Verdict = v
	res.Checked = true
	res.Undecided = !v.Linearizable() && !v.Illegal()
	if v.Illegal() {
		violate("linearizability: porcupine says %s; keys %q", v.Result, v.BadKeys)
		res.VisualizationPath = filepath.Join(cfg.OutDir, "linearizability.html")
		if err := v.Visualize(res.VisualizationPath); errors.Is(err, ErrOutOfMemory) {
			// The violation stands; only its picture is missing.
			res.VisualizationPath = ""
			res.Linearizability += "; no visualization: " + err.Error()
		} else if err != nil {
			return res, err
		}
	}
	if cfg.Bank > 0 {
		tally, vs := CheckBank(h)
		res.Bank = &tally
		for _, v := range vs {
			violate("%s", v)
		}
	}
	res.Keys = cleanUp(ctx, Probe{Cluster: cl, CoordinatorHTTP: cfg.CoordinatorHTTP}, keys, cfg.KeyPrefix, !res.Passed())
	return res, nil
}

// coordinatorURLs are the coordinators' URLs, in the order of
// Coordinators.
func coordinatorURLs(cl Cluster) []string {
	var urls []string
	for _, n := range cl.Coordinators() {
		urls = append(urls, cl.URL(n))
	}
	return urls
}

// canFaultLinks refuses, before any load or fault, a schedule with faults
// on links for a cluster that has no way to inject them (deploy.Cluster,
// Static): a delay of nothing, started and ended at once, asks it.
func canFaultLinks(ctx context.Context, cl Cluster, f FaultConfig) error {
	if f.Every <= 0 || !slices.ContainsFunc(f.Kinds, FaultKind.onLink) {
		return nil
	}
	end, err := cl.LinkFault(ctx, cl.Coordinator(), cl.Participants()[0], "delay", "up", 0)
	if err != nil {
		return fmt.Errorf("drill: this cluster cannot fault its links (leave out %v and %v): %w", NetworkFaults, PartitionFaults, err)
	}
	end()
	return nil
}

// cleanUp deletes the drill's keys from a cluster that kept its promises,
// so that a drill leaves nothing behind in a cluster that holds data; a
// cluster that did not keeps them, for study. It says what it did.
func cleanUp(ctx context.Context, p Probe, keys []string, prefix string, keep bool) string {
	if keep {
		return fmt.Sprintf("%d kept for study, under the prefix %q", len(keys), prefix)
	}
	var failed []error
	for _, k := range keys {
		if _, err := p.call(ctx, "delete", k); err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		return fmt.Sprintf("%d of %d could not be deleted (%v); they are under the prefix %q", len(failed), len(keys), failed[0], prefix)
	}
	return fmt.Sprintf("%d deleted (prefix %q)", len(keys), prefix)
}

// checkCluster runs the checks of a settled cluster, in an order that
// keeps each meaningful: replicas and txlog before the final writes add to
// them, terms after the final writes reached every participant. The
// final reads and writes join the history under client numbers from
// client on. It returns the description of the txlog, and the terms.
func checkCluster(ctx context.Context, cl Cluster, cfg Config, keys []string, rec *recorder, client int,
	highest uint64, refusals map[string]int64, violate func(string, ...any)) (string, *Terms) {
	p := Probe{Cluster: cl, CoordinatorHTTP: cfg.CoordinatorHTTP, ParticipantHTTP: cfg.ParticipantHTTP}
	if err := p.Settle(ctx, cfg.SettleTimeout); err != nil {
		violate("never stuck: %v", err)
		return "", nil
	}
	if err := checkReplicas(ctx, p); err != nil {
		violate("replicas: %v", err)
	}
	if err := finalReads(ctx, p, keys, rec, client); err != nil {
		violate("final reads: %v", err)
	}
	desc, err := checkTxlog(ctx, p, cfg.TxlogLimit, cfg.SettleTimeout)
	if err != nil {
		violate("txlog: %v", err)
	}
	if err := finalWrites(ctx, p, keys, rec, client+len(cl.Participants()), cfg.SettleTimeout); err != nil {
		violate("never stuck: %v", err)
	}
	terms, err := checkTerms(ctx, p, highest, refusals, cfg.SettleTimeout)
	if err != nil {
		violate("fencing: %v", err)
	}
	return desc, &terms
}

// count tallies the load's operations by outcome.
func (r *Result) count(ops []Op) {
	for _, o := range ops {
		r.Ops++
		switch o.Outcome {
		case OK:
			r.OK++
		case Failed:
			r.Failed++
		case Unknown:
			r.Unknown++
		}
	}
}
