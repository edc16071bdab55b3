package drill

import (
	"context"
	"fmt"
	"math/rand/v2"
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

// FaultConfig shapes the fault schedule.
type FaultConfig struct {
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
	// A stream distinct from every client's (clients use 0..N-1).
	return &faulter{cfg: cfg, rng: rand.New(rand.NewPCG(seed, 1<<63)), cl: cl, rec: rec, count: map[FaultKind]int{}}
}

// run injects faults until ctx ends. The fault under way when ctx ends is
// completed (a killed process restarted, a paused one resumed), so that
// the cluster is whole when run returns. An error means the cluster could
// not be driven (a restart failed): the drill cannot go on.
func (f *faulter) run(ctx context.Context) error {
	if f.cfg.Every <= 0 {
		return nil
	}
	n := len(f.cl.ParticipantURLs())
	for {
		gap := f.cfg.Every/2 + f.duration(f.cfg.Every)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(gap):
		}
		var err error
		switch f.next() {
		case KillCoordinator:
			err = f.kill(Coordinator, 0, f.duration(f.cfg.MaxDown))
		case KillParticipant:
			err = f.kill(Participant, f.rng.IntN(n), f.duration(f.cfg.MaxDown))
		case PauseParticipant:
			err = f.pause(f.rng.IntN(n), f.cfg.PauseMin+f.duration(f.cfg.PauseMax-f.cfg.PauseMin))
		}
		if err != nil {
			return err
		}
	}
}

// next picks the kind of the next fault: first one of each kind in a
// seeded order, so that even a short drill sees every kind, then at random
// (kill coordinator 40%, kill participant 30%, pause participant 30%).
func (f *faulter) next() FaultKind {
	if f.first == nil && f.injected == 0 {
		f.first = append([]FaultKind(nil), FaultKinds...)
		f.rng.Shuffle(len(f.first), func(i, j int) { f.first[i], f.first[j] = f.first[j], f.first[i] })
	}
	f.injected++
	if len(f.first) > 0 {
		k := f.first[0]
		f.first = f.first[1:]
		return k
	}
	switch r := f.rng.IntN(10); {
	case r < 4:
		return KillCoordinator
	case r < 7:
		return KillParticipant
	}
	return PauseParticipant
}

// duration draws uniformly from [0, d].
func (f *faulter) duration(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(f.rng.Int64N(int64(d) + 1))
}

// The steps of a fault use their own context: a fault, once started, is
// always finished, even if the drill is being stopped.
func (f *faulter) kill(role Role, i int, down time.Duration) error {
	ctx := context.Background()
	what, kind := "kill coordinator", KillCoordinator
	if role == Participant {
		what, kind = fmt.Sprintf("kill p%d", i+1), KillParticipant
	}
	start := f.rec.now()
	if err := f.cl.Kill(ctx, role, i); err != nil {
		return fmt.Errorf("drill: %s: %w", what, err)
	}
	f.count[kind]++
	time.Sleep(down) // the fault itself: how long the process stays dead
	if err := f.cl.Restart(ctx, role, i); err != nil {
		return fmt.Errorf("drill: restart after %s: %w", what, err)
	}
	f.rec.event(Event{Start: start, End: f.rec.now(), What: fmt.Sprintf("%s (down %v)", what, down.Round(time.Millisecond))})
	return nil
}

func (f *faulter) pause(i int, hold time.Duration) error {
	ctx := context.Background()
	what := fmt.Sprintf("pause p%d", i+1)
	start := f.rec.now()
	if err := f.cl.Pause(ctx, Participant, i); err != nil {
		return fmt.Errorf("drill: %s: %w", what, err)
	}
	f.count[PauseParticipant]++
	time.Sleep(hold) // the fault itself: how long the process is frozen
	if err := f.cl.Resume(ctx, Participant, i); err != nil {
		return fmt.Errorf("drill: resume after %s: %w", what, err)
	}
	f.rec.event(Event{Start: start, End: f.rec.now(), What: fmt.Sprintf("%s for %v", what, hold.Round(time.Millisecond))})
	return nil
}
