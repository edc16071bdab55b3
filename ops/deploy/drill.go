package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/twopc/twopc/ops/drill"
)

// DrillConfig is a drill of the deployed cluster: package drill's load,
// faults and checks, over SSH.
type DrillConfig struct {
	// Faults is the profile: drill.CoordinatorKills(n, every) (mage
	// drill N) or drill.Chaos(every, prepareTimeout) (mage chaos).
	Faults drill.FaultConfig
	// Duration bounds the load; with a fault Limit, the load ends after
	// the last fault even if that is sooner.
	Duration time.Duration
	Seed     uint64 // 0: random (printed, to reproduce)
	OutDir   string // history and visualization; default a temporary folder
	Out      io.Writer
	// Grace is the wait between the warning (this kills the live
	// cluster) and the first fault, for the operator to change their
	// mind with Ctrl-C.
	Grace time.Duration
}

// ErrDrill marks a drill that found a broken promise.
var ErrDrill = errors.New("drill: violation")

// RunDrill runs the drill on cl and prints its report. It fails if the
// drill could not run or found any violation.
func RunDrill(ctx context.Context, cl *Cluster, cfg DrillConfig) (drill.Result, error) {
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	prefix := "drill-" + time.Now().UTC().Format("20060102-150405") + "-"
	fmt.Fprintf(cfg.Out, `drill: this attacks the LIVE cluster of %s (%s):
drill:   for up to %v it %s;
drill:   clients of the cluster see failed calls meanwhile, and the coordinator's counters restart;
drill:   it writes its keys under the prefix %q, and deletes them if the cluster passes (keeps them for study if not)
`, cl.inv.path, cl.Hosts(), cfg.Duration, cfg.Faults.Describe(), prefix)
	if cfg.Grace > 0 {
		fmt.Fprintf(cfg.Out, "drill: starting in %v (Ctrl-C to cancel)\n", cfg.Grace)
		select {
		case <-ctx.Done():
			return drill.Result{}, ctx.Err()
		case <-time.After(cfg.Grace):
		}
	}
	log := slog.New(slog.NewTextHandler(cfg.Out, nil))
	res, err := drill.Run(ctx, cl, drill.Config{
		Seed: cfg.Seed, Duration: cfg.Duration, Faults: cfg.Faults, OutDir: cfg.OutDir, Log: log, KeyPrefix: prefix,
		// Participants are reached through cl's proxies, which add the
		// peer token; the coordinator directly, with the client token
		// (and the cluster's CA).
		CoordinatorHTTP: cl.CoordinatorHTTP(),
	})
	res.Report(cfg.Out)
	if err != nil {
		return res, fmt.Errorf("drill could not run (seed %d): %w", res.Seed, err)
	}
	switch {
	case len(res.Violations) > 0:
		return res, fmt.Errorf("%w: %d violation(s), seed %d", ErrDrill, len(res.Violations), res.Seed)
	case !res.Passed():
		return res, fmt.Errorf("drill: nothing proved: the linearizability check timed out (seed %d, history %s)", res.Seed, res.HistoryPath)
	}
	return res, nil
}
