package drill

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// FaultKind is one kind of fault the drill injects.
type FaultKind string

const (
	// KillCoordinator: SIGKILL the coordinator, wait, restart it.
	KillCoordinator FaultKind = "kill-coordinator"
	// KillParticipant: SIGKILL one participant, wait, restart it.
	KillParticipant FaultKind = "kill-participant"
	// PauseParticipant: SIGSTOP one participant for longer than the
	// prepare timeout, then SIGCONT.
	PauseParticipant FaultKind = "pause-participant"
)

// FaultKinds lists the kinds in the order summaries print them.
var FaultKinds = []FaultKind{KillCoordinator, KillParticipant, PauseParticipant}

// weight is how often each kind is drawn once every kind has been
// injected once: kills of the coordinator are the most telling.
var weight = map[FaultKind]int{KillCoordinator: 4, KillParticipant: 3, PauseParticipant: 3}

// FaultConfig shapes the fault schedule. Chaos and CoordinatorKills are
// the two profiles the operator's commands run.
type FaultConfig struct {
	// Kinds are the kinds to inject (default: all of FaultKinds).
	Kinds []FaultKind
	// Limit ends the drill's load once this many faults are over (0: no
	// limit; the load runs for Config.Duration).
	Limit int
	// Every is the mean gap between the end of one fault and the start
	// of the next (uniform in [Every/2, 3*Every/2]); 0 disables faults.
	Every time.Duration
	// MaxDown bounds how long a killed process stays down (uniform in
	// [0, MaxDown]).
	MaxDown time.Duration
	// PauseMin and PauseMax bound a pause; PauseMin must exceed the
	// coordinator's prepare timeout, so that prepares really time out.
	PauseMin, PauseMax time.Duration
}

// Chaos is the randomized profile: every kind of fault, one every `every`
// on average, processes down for up to a second, pauses of 1.5x to 3x the
// coordinator's prepare timeout.
func Chaos(every, prepareTimeout time.Duration) FaultConfig {
	return FaultConfig{Every: every, MaxDown: time.Second, PauseMin: prepareTimeout * 3 / 2, PauseMax: prepareTimeout * 3}
}

// CoordinatorKills is the kill profile: n SIGKILLs of the coordinator, one
// every `every` on average, each down for up to a second; the load stops
// after the last restart.
func CoordinatorKills(n int, every time.Duration) FaultConfig {
	return FaultConfig{Kinds: []FaultKind{KillCoordinator}, Limit: n, Every: every, MaxDown: time.Second}
}

// Describe says what the faults do to the processes, for an operator
// about to run them on a cluster: "SIGKILLs the coordinator 3 times".
func (f FaultConfig) Describe() string {
	if f.Every <= 0 {
		return "injects no faults"
	}
	kinds := f.Kinds
	if len(kinds) == 0 {
		kinds = FaultKinds
	}
	words := map[FaultKind]string{KillCoordinator: "SIGKILLs the coordinator", KillParticipant: "SIGKILLs participants",
		PauseParticipant: "SIGSTOPs participants (for " + f.PauseMin.String() + " to " + f.PauseMax.String() + ")"}
	var what []string
	for _, k := range kinds {
		what = append(what, words[k])
	}
	how := fmt.Sprintf("one fault every %v on average", f.Every)
	if f.Limit > 0 {
		how = fmt.Sprintf("%d times, %s apart on average", f.Limit, f.Every)
	}
	return strings.Join(what, ", ") + ", " + how + ", restarting what it kills"
}

// faulter injects one fault at a time, at moments and on targets drawn
// from its own generator: for a seed, the sequence of faults and their
// timings is fixed (what the load is doing at each moment is not).
type faulter struct {
	cfg   FaultConfig
	rng   *rand.Rand
	cl    Cluster
	rec   *recorder
	count map[FaultKind]int

	first    []FaultKind // kinds still to inject once each, at the start
	injected int
}

func newFaulter(seed uint64, cfg FaultConfig, cl Cluster, rec *recorder) *faulter {
	if len(cfg.Kinds) == 0 {
		cfg.Kinds = FaultKinds
	}
	f := &faulter{cfg: cfg, rng: rand.New(rand.NewPCG(seed, 1<<63)), cl: cl, rec: rec, count: map[FaultKind]int{}}
	// A stream distinct from every client's (clients use 0..N-1). The
	// first faults are one of each kind, in a seeded order, so that even
	// a short drill sees every kind.
	f.first = slices.Clone(cfg.Kinds)
	f.rng.Shuffle(len(f.first), func(i, j int) { f.first[i], f.first[j] = f.first[j], f.first[i] })
	return f
}

// run injects faults until ctx ends or Limit faults are over. The fault
// under way when ctx ends is completed (a killed process restarted, a
// paused one resumed), so that the cluster is whole when run returns. An
// error means the cluster could not be driven (a restart failed): the
// drill cannot go on.
func (f *faulter) run(ctx context.Context) error {
	if f.cfg.Every <= 0 {
		return nil
	}
	parts := f.cl.Participants()
	for f.cfg.Limit == 0 || f.injected < f.cfg.Limit {
		gap := f.cfg.Every/2 + f.duration(f.cfg.Every)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(gap):
		}
		var err error
		switch k := f.next(); k {
		case KillCoordinator:
			err = f.fault(k, f.cl.Coordinator(), f.duration(f.cfg.MaxDown), f.cl.Kill, f.cl.Restart)
		case KillParticipant:
			err = f.fault(k, parts[f.rng.IntN(len(parts))], f.duration(f.cfg.MaxDown), f.cl.Kill, f.cl.Restart)
		case PauseParticipant:
			err = f.fault(k, parts[f.rng.IntN(len(parts))], f.cfg.PauseMin+f.duration(f.cfg.PauseMax-f.cfg.PauseMin), f.cl.Pause, f.cl.Resume)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// next picks the kind of the next fault: first one of each kind, then at
// random by weight.
func (f *faulter) next() FaultKind {
	f.injected++
	if len(f.first) > 0 {
		k := f.first[0]
		f.first = f.first[1:]
		return k
	}
	total := 0
	for _, k := range f.cfg.Kinds {
		total += weight[k]
	}
	r := f.rng.IntN(total)
	for _, k := range f.cfg.Kinds {
		if r -= weight[k]; r < 0 {
			return k
		}
	}
	panic("drill: fault weights do not add up")
}

// duration draws uniformly from [0, d].
func (f *faulter) duration(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(f.rng.Int64N(int64(d) + 1))
}

// fault injects one fault: act on the process called name, hold the
// fault for d, undo it, and record it as an event. Its steps use their
// own context: a fault, once started, is always finished, even if the
// drill is being stopped.
func (f *faulter) fault(kind FaultKind, name string, d time.Duration, act, undo func(context.Context, string) error) error {
	ctx := context.Background()
	what := fmt.Sprintf("kill %s (down %v)", name, d.Round(time.Millisecond))
	if kind == PauseParticipant {
		what = fmt.Sprintf("pause %s for %v", name, d.Round(time.Millisecond))
	}
	start := f.rec.now()
	if err := act(ctx, name); err != nil {
		return fmt.Errorf("drill: %s: %w", what, err)
	}
	f.count[kind]++
	time.Sleep(d) // the fault itself: how long the process stays dead or frozen
	if err := undo(ctx, name); err != nil {
		return fmt.Errorf("drill: undoing %s: %w", what, err)
	}
	f.rec.event(Event{Start: start, End: f.rec.now(), What: what})
	return nil
}
