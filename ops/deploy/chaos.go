package deploy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/twopc/twopc/ops/drill"
)

// ChaosConfig is the randomized drill of package drill, run against a
// deployed cluster: random put/get/delete on few keys, SIGKILL of the
// coordinator or a participant and SIGSTOP of participants over SSH, then
// a linearizability check (porcupine), replica digests and the txlog.
type ChaosConfig struct {
	Duration time.Duration
	Seed     uint64 // 0: random (printed, to reproduce)
	// PrepareTimeout must be the deployed coordinator's --prepare-timeout
	// (the binary's default is 2s): pauses last 1.5x to 3x as long, so
	// that prepares really time out.
	PrepareTimeout time.Duration
	FaultEvery     time.Duration // mean gap between faults, default 2s
	OutDir         string        // history and visualization; default a temporary folder
	Out            io.Writer
}

// RunChaos runs the randomized drill on cl and prints its summary. It
// fails if the drill could not run or found any violation.
func RunChaos(ctx context.Context, cl *Cluster, cfg ChaosConfig) (drill.Result, error) {
	if cfg.PrepareTimeout <= 0 {
		cfg.PrepareTimeout = 2 * time.Second
	}
	if cfg.FaultEvery <= 0 {
		cfg.FaultEvery = 2 * time.Second
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	log := slog.New(slog.NewTextHandler(cfg.Out, nil))
	res, err := drill.Run(ctx, cl, drill.Config{
		Seed: cfg.Seed, Duration: cfg.Duration, OutDir: cfg.OutDir, Log: log,
		// Participants are reached through cl's proxies, which add the
		// peer token; the coordinator directly, with the client token
		// (and the cluster's CA).
		CoordinatorHTTP: cl.CoordinatorHTTP(),
		Faults: drill.FaultConfig{Every: cfg.FaultEvery, MaxDown: time.Second,
			PauseMin: cfg.PrepareTimeout * 3 / 2, PauseMax: cfg.PrepareTimeout * 3},
	})
	fmt.Fprintln(cfg.Out, res.Summary())
	if err != nil {
		return res, fmt.Errorf("chaos drill could not run (seed %d): %w", res.Seed, err)
	}
	for _, v := range res.Violations {
		fmt.Fprintln(cfg.Out, "violation:", v)
	}
	fmt.Fprintln(cfg.Out, "history:", res.HistoryPath)
	if !res.Passed() {
		return res, fmt.Errorf("%w: %d violation(s), seed %d", ErrDrill, len(res.Violations), res.Seed)
	}
	return res, nil
}
