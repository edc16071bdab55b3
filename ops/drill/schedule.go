package drill

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// faulter injects faults at moments and on targets drawn from its own
// generator: for a seed, the sequence of faults (kinds, targets, gaps,
// lengths) is fixed, because each is drawn in full before the faulter
// waits for the moment it may start; what the load is doing at each
// moment, and how faults interleave, is not.
//
// Faults overlap, within bounds that keep the drill inside what the
// cluster promises: at most MaxActive at once; one fault on a process
// at a time (two participants down at once is a different drill); and
// a lose-participant alone, from before it kills to after the lost
// participant is back, because a second participant behind while one
// is empty could lose acknowledged writes by design (DESIGN.md:
// `configured - min` participants may be lost at once); and one fault
// on a coordinator at a time (onCoordinator: a kill, a pause, a
// partition), so that a majority of coordinators always stays up and
// in touch: with three, one down leaves two to elect a leader.
type faulter struct {
	cfg   FaultConfig
	rng   *rand.Rand
	cl    Cluster
	rec   *recorder
	w     watch
	after func(time.Duration) <-chan time.Time // gaps and holds; time.After

	first    []FaultKind // kinds still to inject once each, at the start
	injected int

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced when a fault ends or fails
	active     int
	onProcess  bool // a fault on a process is under way
	onCoord    bool // a fault on a coordinator is under way
	alone      bool // a lose-participant or a lose-follower is under way
	mostAtOnce int
	count      map[FaultKind]int
	err        error    // the first fault that could not drive the cluster
	findings   []string // what the cluster failed to do during a fault
	highest    uint64   // the highest term a status gave
	takeovers  int      // new leaders seen after a fault on the leader
	// refusals sums each participant's stale_term_refusals read just
	// before each of its kills, which reset its counters.
	refusals map[string]int64
	lost     []string // coordinators lost (lose-follower): their names are never used again
	// coordinatorsChanged, if set, hears that a lose-follower changed
	// Coordinators (the load's clients follow).
	coordinatorsChanged func()
}

// watch is how the faulter sees the cluster: Probe's calls in a drill, a
// script in tests.
type watch struct {
	// members returns each participant's state, per status.
	members func(context.Context) (map[string]string, error)
	// leader returns the coordinator that leads and its term, asking
	// any coordinator but avoid (see Probe.leader).
	leader func(ctx context.Context, avoid string) (string, uint64, error)
	// refusals returns a participant's stale_term_refusals (stats).
	refusals func(ctx context.Context, participant string) (int64, error)
	// change calls coordinators.add or coordinators.remove (method)
	// on the coordinator via, with the peer token.
	change func(ctx context.Context, via, method string, args ...any) error
	// group returns the members of the coordinator group, per
	// coordinators.list.
	group func(ctx context.Context) ([]string, error)
	// leaderOf returns the leader and term the coordinator called name
	// knows (its own status, which a follower forwards to its leader).
	leaderOf func(ctx context.Context, name string) (string, uint64, error)
}

// plan is one fault as the schedule drew it.
type plan struct {
	kind   FaultKind
	gap    time.Duration // from the moment it may start to its start
	target string        // the process, or the participant whose link
	hold   time.Duration // how long it lasts (not lose-participant: see lose)
	dir    string        // links: "up" (coordinator to participant), "down" or "both"
	delay  time.Duration // delay-link: the latency added
	fault  string        // partitions: "drop" or "cut"
	pick   int           // kill-follower, lose-follower: which follower (modulo how many there are)
}

func newFaulter(seed uint64, cfg FaultConfig, cl Cluster, rec *recorder, w watch) *faulter {
	cfg.defaults()
	f := &faulter{cfg: cfg, rng: rand.New(rand.NewPCG(seed, 1<<63)), cl: cl, rec: rec, w: w, after: time.After,
		changed: make(chan struct{}), count: map[FaultKind]int{}, refusals: map[string]int64{}}
	for _, k := range cfg.Kinds {
		f.count[k] = 0 // so that the summary shows a kind never drawn
	}
	// A stream distinct from every client's (clients use 0..N-1). The
	// first faults are one of each kind, in a seeded order, so that even
	// a short drill sees every kind.
	f.first = slices.Clone(cfg.Kinds)
	f.rng.Shuffle(len(f.first), func(i, j int) { f.first[i], f.first[j] = f.first[j], f.first[i] })
	return f
}

// run injects faults until ctx ends, Limit faults are over, a fault
// fails to drive the cluster (its error is returned: the drill cannot go
// on) or the cluster fails to do what a fault expects of it (a finding,
// in findings). Every fault under way is completed (a killed process
// restarted, a paused one resumed, a link healed) before run returns, so
// that the cluster is whole.
func (f *faulter) run(ctx context.Context) error {
	if f.cfg.Every <= 0 {
		return nil
	}
	var wg sync.WaitGroup
	for f.cfg.Limit == 0 || f.injected < f.cfg.Limit {
		p := f.draw()
		if !f.admit(ctx, p.kind) {
			break
		}
		select {
		case <-ctx.Done():
		case <-f.after(p.gap):
		}
		if ctx.Err() != nil {
			f.release(p.kind, nil)
			break
		}
		wg.Go(func() { f.release(p.kind, f.inject(p)) })
	}
	wg.Wait()
	return f.err
}

// draw picks the next fault in full: its gap, kind, target and lengths,
// in an order fixed by the kind alone.
func (f *faulter) draw() plan {
	p := plan{gap: f.cfg.Every/2 + f.duration(f.cfg.Every)}
	p.kind = f.next()
	parts := f.cl.Participants()
	switch p.kind {
	case KillCoordinator:
		p.target, p.hold = f.cl.Coordinator(), f.duration(f.cfg.MaxDown)
	case KillParticipant:
		p.target = parts[f.rng.IntN(len(parts))]
		p.hold = f.duration(f.cfg.MaxDown)
	case PauseParticipant:
		p.target = parts[f.rng.IntN(len(parts))]
		p.hold = f.cfg.PauseMin + f.duration(f.cfg.PauseMax-f.cfg.PauseMin)
	case DelayLink, DropLink, CutLink:
		p.target = parts[f.rng.IntN(len(parts))]
		p.hold = f.cfg.LinkMin + f.duration(f.cfg.LinkMax-f.cfg.LinkMin)
		p.dir = []string{"up", "down", "both"}[f.rng.IntN(3)]
		if p.kind == DelayLink {
			p.delay = f.duration(f.cfg.MaxDelay)
		}
	case LoseParticipant:
		p.target = parts[f.rng.IntN(len(parts))]
	case KillLeader:
		p.hold = f.duration(f.cfg.MaxDown)
	case KillFollower:
		p.hold = f.duration(f.cfg.MaxDown)
		p.pick = f.rng.IntN(1 << 16)
	case LoseFollower:
		p.pick = f.rng.IntN(1 << 16)
	case PauseLeader:
		p.hold = f.cfg.PauseMin + f.duration(f.cfg.PauseMax-f.cfg.PauseMin)
	case PartitionLeaderParticipants, PartitionLeaderCoordinators:
		p.hold = f.cfg.LinkMin + f.duration(f.cfg.LinkMax-f.cfg.LinkMin)
		p.dir = []string{"up", "down", "both"}[f.rng.IntN(3)]
		p.fault = []string{"drop", "cut"}[f.rng.IntN(2)]
	}
	return p
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

// admit waits until a fault of kind k may start, and counts it as under
// way. It returns false, admitting nothing, if ctx ends or a fault has
// failed first.
func (f *faulter) admit(ctx context.Context, k FaultKind) bool {
	for {
		f.mu.Lock()
		if f.err != nil || len(f.findings) > 0 {
			f.mu.Unlock()
			return false
		}
		if f.mayStart(k) {
			f.active++
			f.mostAtOnce = max(f.mostAtOnce, f.active)
			f.onProcess = f.onProcess || k.onProcess()
			f.onCoord = f.onCoord || k.onCoordinator()
			f.alone = k.alone()
			f.mu.Unlock()
			return true
		}
		changed := f.changed
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return false
		case <-changed:
		}
	}
}

// mayStart says whether a fault of kind k fits beside those under way.
func (f *faulter) mayStart(k FaultKind) bool {
	switch {
	case f.alone:
		return false
	case k.alone():
		return f.active == 0
	case f.active >= f.cfg.MaxActive:
		return false
	case k.onCoordinator() && f.onCoord:
		return false
	}
	return !k.onProcess() || !f.onProcess
}

// release ends a fault of kind k admitted by admit, with its outcome: a
// finding (the cluster did not do what it should) or an error (the
// cluster could not be driven).
func (f *faulter) release(k FaultKind, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.active--
	if k.onProcess() {
		f.onProcess = false
	}
	if k.onCoordinator() {
		f.onCoord = false
	}
	if k.alone() {
		f.alone = false
	}
	var fd finding
	switch {
	case errors.As(err, &fd):
		f.findings = append(f.findings, fd.what)
	case err != nil && f.err == nil:
		f.err = err
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

// counted counts a fault that took effect.
func (f *faulter) counted(k FaultKind) {
	f.mu.Lock()
	f.count[k]++
	f.mu.Unlock()
}

// sawTerm notes a term a status gave.
func (f *faulter) sawTerm(t uint64) {
	f.mu.Lock()
	f.highest = max(f.highest, t)
	f.mu.Unlock()
}

// terms returns the highest term a status gave, the takeovers seen and
// the refusals counted before kills; call it once run has returned.
func (f *faulter) terms() (highest uint64, takeovers int, refusals map[string]int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.highest, f.takeovers, f.refusals
}

// tally returns the faults by kind, and the most that were under way at
// once; call it once run has returned.
func (f *faulter) tally() (map[FaultKind]int, int, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count, f.mostAtOnce, f.findings
}
