package drill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// scripted is a Cluster that records what the faulter asks of it, and
// checks the bounds the faulter promises as it goes: one fault on a
// process at a time, a lost participant alone, at most max at once.
type scripted struct {
	Static
	max int // most faults at once (0: not checked)

	mu      sync.Mutex
	actions []string
	enough  chan struct{} // closed once the test has seen enough actions
	want    int
	down    map[string]bool // killed or paused
	links   int             // link faults under way
	losing  string          // wiped and not restarted yet
	most    int             // most faults under way at once
	broken  []string        // bounds the faulter did not keep
	linkUp  chan struct{}   // one token per link fault started
	// With several coordinators (newScriptedGroup): who leads, in which
	// term, and which are cut off from the others.
	coords   []string
	leading  string
	term     uint64
	isolated map[string]int
	// members, if set, makes coordinators.list from the coordinators
	// (a group that did not do what it was asked).
	members func([]string) []string
}

// newScriptedGroup is newScripted with coordinators c1, c2, c3, of
// which c1 leads first; when the leader is down or cut off from the
// others, the first other coordinator that is not takes over in the
// next term (as raft would, a while later).
func newScriptedGroup(max, want int) *scripted {
	s := newScripted(max, want)
	s.coords, s.leading, s.term, s.isolated = []string{"c1", "c2", "c3"}, "c1", 1, map[string]int{}
	return s
}

func (s *scripted) Coordinators() []string {
	if s.coords == nil {
		return s.Static.Coordinators()
	}
	return slices.Clone(s.coords)
}

// leader is the faulter's view of who leads (watch.leader).
func (s *scripted) leader(_ context.Context, avoid string) (string, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.coords == nil {
		return s.Coordinator(), 1, nil
	}
	out := func(c string) bool { return s.down[c] || s.isolated[c] > 0 }
	if out(s.leading) {
		i := slices.IndexFunc(s.coords, func(c string) bool { return !out(c) })
		if len(s.coords)-len(slices.DeleteFunc(slices.Clone(s.coords), out)) > len(s.coords)/2 {
			return "", 0, fmt.Errorf("no leader: %v down, %v cut off", s.down, s.isolated)
		}
		s.leading, s.term = s.coords[i], s.term+1
	}
	return s.leading, s.term, nil
}

func (s *scripted) watch() watch {
	return watch{members: s.states, leader: s.leader, change: s.change, group: s.group, leaderOf: s.leaderOf}
}

// LoseCoordinator forgets a killed coordinator (CoordinatorLoser).
func (s *scripted) LoseCoordinator(_ context.Context, name string) error {
	var err error
	s.note("lose", name, func() {
		if !s.down[name] {
			err = fmt.Errorf("lose %s: not killed", name)
			return
		}
		s.losing = name
		delete(s.down, name)
		s.coords = slices.DeleteFunc(s.coords, func(c string) bool { return c == name })
	})
	return err
}

// AddCoordinator starts a new one (CoordinatorLoser): it is a member at
// once, as far as the script goes.
func (s *scripted) AddCoordinator(_ context.Context, name string, members map[string]string) (string, error) {
	var err error
	s.note("add", name, func() {
		if len(members) != len(s.coords) || slices.Contains(s.coords, name) {
			err = fmt.Errorf("add %s: members %v, coordinators %v", name, members, s.coords)
			return
		}
		s.coords = append(s.coords, name)
		s.losing = ""
	})
	return "u-" + name, err
}

// change records a membership change asked of the leader.
func (s *scripted) change(_ context.Context, via, method string, args ...any) error {
	s.note(method, fmt.Sprint(args[0]), nil)
	return nil
}

// group is coordinators.list: the coordinators, unless the test says
// otherwise.
func (s *scripted) group(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.members != nil {
		return s.members(slices.Clone(s.coords)), nil
	}
	return slices.Clone(s.coords), nil
}

// leaderOf: every coordinator follows the leader at once.
func (s *scripted) leaderOf(ctx context.Context, name string) (string, uint64, error) {
	return s.leader(ctx, "")
}

func newScripted(max, want int) *scripted {
	return &scripted{Static: *NewStatic("", []string{"db1=u1", "db2=u2", "db3=u3"}), max: max, want: want,
		enough: make(chan struct{}), down: map[string]bool{}, linkUp: make(chan struct{}, 1000)}
}

func (s *scripted) note(what, name string, change func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.actions = append(s.actions, what+" "+name)
	if change != nil {
		change()
	}
	n := len(s.down) + s.links
	s.most = max(s.most, n)
	coordsOut := 0
	for _, c := range s.coords {
		if s.down[c] || s.isolated[c] > 0 {
			coordsOut++
		}
	}
	switch {
	case coordsOut > 1:
		s.broken = append(s.broken, fmt.Sprintf("at %q: %d coordinators down or cut off at once: %v %v", what+" "+name, coordsOut, s.down, s.isolated))
	case len(s.down) > 1:
		s.broken = append(s.broken, fmt.Sprintf("at %q: two processes down at once: %v", what+" "+name, s.down))
	case s.max > 0 && n > s.max:
		s.broken = append(s.broken, fmt.Sprintf("at %q: %d faults at once, want at most %d", what+" "+name, n, s.max))
	case s.losing != "" && n > 1:
		s.broken = append(s.broken, fmt.Sprintf("at %q: a fault beside the loss of %s", what+" "+name, s.losing))
	}
	if len(s.actions) == s.want {
		close(s.enough)
	}
}

func (s *scripted) Kill(_ context.Context, name string) error {
	s.note("kill", name, func() { s.down[name] = true })
	return nil
}

func (s *scripted) Restart(_ context.Context, name string) error {
	s.note("restart", name, func() {
		delete(s.down, name)
		if s.losing == name {
			s.losing = ""
		}
	})
	return nil
}

func (s *scripted) Pause(_ context.Context, name string) error {
	s.note("pause", name, func() { s.down[name] = true })
	return nil
}

func (s *scripted) Resume(_ context.Context, name string) error {
	s.note("resume", name, func() { delete(s.down, name) })
	return nil
}

func (s *scripted) Wipe(_ context.Context, name string) error {
	s.note("wipe", name, func() { s.losing = name })
	return nil
}

func (s *scripted) LinkFault(_ context.Context, a, b, fault, dir string, _ time.Duration) (func(), error) {
	what := fault + " " + b + " " + dir
	between := slices.Contains(s.coords, b) // two coordinators: a is cut off from the others
	if s.coords != nil {
		what = fault + " " + a + "-" + b + " " + dir
	}
	s.note("start", what, func() {
		s.links++
		if between {
			s.isolated[a]++
		}
	})
	s.linkUp <- struct{}{}
	return func() {
		s.note("end", what, func() {
			s.links--
			if between {
				s.isolated[a]--
			}
		})
	}, nil
}

// states is the coordinator's view: a participant that is down is
// excluded (as if the coordinator excluded it at once), the rest active.
func (s *scripted) states(context.Context) (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := map[string]string{}
	for _, p := range s.Participants() {
		st[p] = "active"
		if s.down[p] {
			st[p] = "excluded"
		}
	}
	return st, nil
}

// tiny is a schedule of microsecond faults.
func tiny(kinds ...FaultKind) FaultConfig {
	return FaultConfig{Kinds: kinds, Every: time.Microsecond, MaxDown: time.Microsecond, PauseMin: time.Microsecond, PauseMax: 2 * time.Microsecond,
		LinkMin: time.Microsecond, LinkMax: 2 * time.Microsecond, MaxDelay: time.Millisecond}
}

// runUntil runs a faulter on s until wait returns (nil: until s has
// seen its wanted actions) or the faulter stops by itself (a finding),
// stops it, reports the bounds it broke, and returns the actions.
func runUntil(t *testing.T, f *faulter, s *scripted, wait func()) []string {
	t.Helper()
	if wait == nil {
		wait = func() { <-s.enough }
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.run(ctx) }()
	waited := make(chan struct{})
	go func() { wait(); close(waited) }() // left waiting if the faulter stops first
	var err error
	select {
	case <-waited:
		cancel()
		err = <-done
	case err = <-done:
		cancel()
	}
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.broken {
		t.Error(b)
	}
	return slices.Clone(s.actions)
}

// schedule runs a faulter with tiny durations until it has acted n times.
func schedule(t *testing.T, seed uint64, n int) []string {
	s := newScripted(0, n)
	return runUntil(t, newFaulter(seed, tiny(), s, newRecorder(), s.watch()), s, nil)[:n]
}

func TestFaultScheduleIsSeeded(t *testing.T) {
	a, b := schedule(t, 42, 60), schedule(t, 42, 60)
	if !slices.Equal(a, b) {
		t.Fatalf("one seed, two schedules:\n%q\n%q", a, b)
	}
	if c := schedule(t, 43, 60); slices.Equal(a, c) {
		t.Fatalf("seeds 42 and 43 gave the same schedule %q", a)
	}
	// Faults on processes come one at a time, and the first three are
	// one of each kind.
	kinds := map[string]bool{}
	for i := 0; i < len(a); i += 2 {
		f := strings.Fields(a[i]) // what, name
		undo := map[string]string{"kill": "restart", "pause": "resume"}[f[0]]
		if undo == "" {
			t.Fatalf("action %d is %q, want the start of a fault", i, a[i])
		}
		if want := undo + " " + f[1]; a[i+1] != want {
			t.Fatalf("action %d is %q, want %q", i+1, a[i+1], want)
		}
		if i < 6 {
			kinds[f[0]+" "+strings.TrimRight(f[1], "123")] = true // kill coordinator, kill db, pause db
		}
	}
	if len(kinds) != 3 {
		t.Fatalf("the first three faults are not one of each kind: %q", a[:6])
	}
}

// With faults that overlap, the interleaving is the machine's, but the
// faults themselves (kinds, targets, gaps, lengths, directions) are the
// seed's.
func TestFaultPlansAreSeeded(t *testing.T) {
	cfg := Chaos(time.Second, time.Second).With(NetworkFaults...).With(LoseParticipant)
	plans := func(seed uint64) []plan {
		f := newFaulter(seed, cfg, newScripted(0, 0), newRecorder(), watch{})
		var out []plan
		for range 100 {
			out = append(out, f.draw())
		}
		return out
	}
	a := plans(7)
	if b := plans(7); !slices.Equal(a, b) {
		t.Fatal("one seed, two fault plans")
	}
	if slices.Equal(a, plans(8)) {
		t.Fatal("seeds 7 and 8 gave the same plans")
	}
	first := map[FaultKind]bool{}
	for i, p := range a {
		if i < len(cfg.Kinds) {
			first[p.kind] = true
		}
		if p.kind.onLink() && (p.dir == "" || p.hold < cfg.LinkMin || p.hold > cfg.LinkMax || p.delay > cfg.MaxDelay) {
			t.Errorf("plan %d: %+v outside the config", i, p)
		}
	}
	if len(first) != len(cfg.Kinds) {
		t.Fatalf("the first %d faults are not one of each kind: %v", len(cfg.Kinds), first)
	}
}

// Faults on links overlap faults on processes and each other, up to
// MaxActive: here link faults hold until the test lets them go, so the
// faulter fills its slots with them and must wait.
func TestFaultsOverlapWithinTheirBound(t *testing.T) {
	cfg := tiny(append(slices.Clone(ProcessFaults), NetworkFaults...)...)
	cfg.LinkMin, cfg.LinkMax, cfg.MaxActive = time.Hour, time.Hour, 3
	s := newScripted(3, -1)
	f := newFaulter(5, cfg, s, newRecorder(), s.watch())
	release := make(chan struct{})
	f.after = func(d time.Duration) <-chan time.Time {
		if d < time.Hour {
			return time.After(d)
		}
		ch := make(chan time.Time, 1)
		go func() { <-release; ch <- time.Time{} }()
		return ch
	}
	runUntil(t, f, s, func() {
		for range 3 {
			<-s.linkUp // three link faults under way, none of which can end
		}
		close(release)
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.links != 0 || len(s.down) != 0 {
		t.Fatalf("run returned with %d link faults and %v down", s.links, s.down)
	}
	if _, most, _ := f.tally(); most != 3 || s.most != 3 {
		t.Fatalf("at most %d faults at once (the cluster saw %d), want 3", most, s.most)
	}
}

// A lost participant is replaced alone: killed, wiped, back once the
// coordinator excluded it, and nothing else happens meanwhile.
func TestLoseParticipantRunsAlone(t *testing.T) {
	s := newScripted(3, 200)
	f := newFaulter(3, tiny(LoseParticipant, DropLink, KillParticipant), s, newRecorder(), s.watch())
	actions := runUntil(t, f, s, nil)
	n := 0
	for i, a := range actions {
		if name, ok := strings.CutPrefix(a, "wipe "); ok {
			n++
			if actions[i-1] != "kill "+name || !slices.Contains(actions[i+1:], "restart "+name) {
				t.Fatalf("lose %s: %q, want kill, wipe, restart", name, actions[max(0, i-1):min(len(actions), i+3)])
			}
		}
	}
	if n == 0 {
		t.Fatal("no participant lost")
	}
	if !slices.ContainsFunc(f.rec.history().Events, func(e Event) bool { return strings.HasPrefix(e.What, "lose db") }) {
		t.Fatal("no event for a lost participant")
	}
}

// A coordinator that never excludes a lost participant (no
// --exclude-after, or a bug) is a finding, not a hang: the participant
// is restarted, and the faulter stops.
func TestLoseFindsAParticipantNeverExcluded(t *testing.T) {
	s := newScripted(0, -1)
	cfg := tiny(LoseParticipant)
	cfg.LoseWait = 50 * time.Millisecond
	always := func(context.Context) (map[string]string, error) {
		return map[string]string{"db1": "active", "db2": "active", "db3": "active"}, nil
	}
	f := newFaulter(1, cfg, s, newRecorder(), watch{members: always})
	if err := f.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, _, findings := f.tally()
	if len(findings) != 1 || !strings.Contains(findings[0], "excluded") || !strings.Contains(findings[0], "--exclude-after") {
		t.Fatalf("findings %q", findings)
	}
	if len(s.actions) != 3 || !strings.HasPrefix(s.actions[2], "restart ") {
		t.Fatalf("actions %q, want kill, wipe, restart and nothing more", s.actions)
	}
}

// The kill profile (mage drill N): N coordinator kills, each followed by
// its restart, and nothing else; then the faulter stops by itself.
func TestCoordinatorKillsProfile(t *testing.T) {
	cfg := CoordinatorKills(3, time.Microsecond)
	cfg.MaxDown = time.Microsecond
	s := newScripted(0, -1)
	f := newFaulter(1, cfg, s, newRecorder(), s.watch())
	done := make(chan error, 1)
	go func() { done <- f.run(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the faulter did not stop after its 3 faults")
	}
	want := strings.Repeat("kill coordinator,restart coordinator,", 3)
	if got := strings.Join(s.actions, ",") + ","; got != want {
		t.Fatalf("actions %s, want %s", got, want)
	}
	if f.count[KillCoordinator] != 3 || len(f.count) != 1 {
		t.Fatalf("counted %v", f.count)
	}
}

// A schedule with faults on links is refused before the load starts by a
// cluster that cannot inject them, with the error it gave.
func TestRunRefusesLinkFaultsTheClusterCannotInject(t *testing.T) {
	cl := NewStatic("http://127.0.0.1:1/RPC2", []string{"p1=http://127.0.0.1:2/RPC2"})
	cfg := Config{Duration: time.Hour, OutDir: t.TempDir(), Faults: Chaos(time.Second, time.Second).With(NetworkFaults...)}
	_, err := Run(context.Background(), cl, cfg)
	if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "cannot fault its links") {
		t.Fatalf("Run = %v, want a refusal that wraps ErrUnsupported", err)
	}
}

// With several coordinators, kill-coordinator becomes the faults on the
// leader and on a follower, and faults on links bring the partitions
// of the leader; a schedule that does not fit the cluster is refused.
func TestFaultsForCoordinators(t *testing.T) {
	one := Chaos(time.Second, time.Second).With(NetworkFaults...)
	if got := one.ForCoordinators(1).Kinds; !slices.Equal(got, one.Kinds) {
		t.Fatalf("one coordinator: kinds %v, want %v", got, one.Kinds)
	}
	three := one.ForCoordinators(3)
	want := []FaultKind{KillLeader, PauseLeader, KillFollower, LoseFollower, KillParticipant, PauseParticipant, DelayLink, DropLink, CutLink,
		PartitionLeaderParticipants, PartitionLeaderCoordinators}
	if !slices.Equal(three.Kinds, want) {
		t.Fatalf("three coordinators: kinds %v, want %v", three.Kinds, want)
	}
	two := one.ForCoordinators(2)
	if slices.Contains(two.Kinds, LoseFollower) || !slices.Contains(two.Kinds, KillFollower) || two.fits(2) != nil || three.fits(2) == nil {
		t.Fatalf("two coordinators: kinds %v; a lose-follower needs three", two.Kinds)
	}
	if got := (FaultConfig{}).ForCoordinators(3).Kinds; slices.ContainsFunc(got, FaultKind.onLink) || !slices.Contains(got, KillLeader) {
		t.Fatalf("three coordinators, default kinds: %v", got)
	}
	if one.fits(3) == nil || three.fits(1) == nil || one.fits(1) != nil || three.fits(3) != nil {
		t.Fatal("fits accepts a schedule for the wrong number of coordinators, or refuses one for the right number")
	}
}

// With several coordinators the faulter finds the leader before each
// fault on it, attacks one coordinator at a time (kills, pauses,
// partitions alike), and waits for another to take over before it
// heals a fault that took the leader away.
func TestLeaderFaultsOneCoordinatorAtATime(t *testing.T) {
	s := newScriptedGroup(0, 400) // a partition is several link faults: MaxActive is not the script's to count
	cfg := tiny(Chaos(time.Second, time.Second).With(NetworkFaults...).ForCoordinators(3).Kinds...)
	// Partitions long enough that other faults come due meanwhile.
	cfg.LinkMin, cfg.LinkMax = time.Millisecond, 3*time.Millisecond
	cfg.LeaderWait = time.Second // the script elects at once, unless too many coordinators are out
	f := newFaulter(9, cfg, s, newRecorder(), s.watch())
	runUntil(t, f, s, nil)
	if _, _, findings := f.tally(); len(findings) > 0 {
		t.Fatalf("findings: %q", findings)
	}
	for _, k := range append(slices.Clone(LeaderFaults), PartitionFaults...) {
		if f.count[k] == 0 {
			t.Errorf("no %s in 400 actions: %v", k, f.count)
		}
	}
	if _, takeovers, _ := f.terms(); takeovers < f.count[KillLeader]+f.count[PauseLeader]+f.count[PartitionLeaderCoordinators]-1 {
		// the last may have been cut short by the end of the run
		t.Errorf("%d takeovers after %v", takeovers, f.count)
	}
	var leaderKills int
	for _, e := range f.rec.history().Events {
		if strings.HasPrefix(e.What, "kill leader ") {
			leaderKills++
			if !strings.Contains(e.What, "took over in term") {
				t.Errorf("event %q: no takeover", e.What)
			}
		}
	}
	if leaderKills == 0 {
		t.Error("no event for a kill of the leader")
	}
}

// A leader that is never replaced is a finding, not a hang.
func TestNoTakeoverIsAFinding(t *testing.T) {
	s := newScriptedGroup(0, -1)
	cfg := tiny(KillLeader)
	cfg.LeaderWait = 50 * time.Millisecond
	stuck := func(context.Context, string) (string, uint64, error) { return "c1", 1, nil } // c1 leads, dead or alive
	f := newFaulter(1, cfg, s, newRecorder(), watch{members: s.states, leader: stuck})
	if err := f.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, _, findings := f.tally()
	if len(findings) != 1 || !strings.Contains(findings[0], "another coordinator leading") {
		t.Fatalf("findings %q", findings)
	}
	if len(s.actions) != 2 || s.actions[1] != "restart c1" {
		t.Fatalf("actions %q, want kill c1, restart c1 and nothing more", s.actions)
	}
}

// A lost follower is replaced alone: killed, forgotten with its log,
// removed from the group on the leader, and a new coordinator under a
// new name added; later faults see the new one, never the old.
func TestLoseFollowerReplacesIt(t *testing.T) {
	s := newScriptedGroup(0, 300)
	cfg := tiny(KillLeader, KillFollower, LoseFollower, KillParticipant, DropLink, PartitionLeaderCoordinators)
	cfg.LinkMin, cfg.LinkMax = time.Millisecond, 3*time.Millisecond
	cfg.LeaderWait = time.Second
	f := newFaulter(4, cfg, s, newRecorder(), s.watch())
	changed := 0
	f.coordinatorsChanged = func() { changed++ }
	actions := runUntil(t, f, s, nil)
	if _, _, findings := f.tally(); len(findings) > 0 {
		t.Fatalf("findings: %q", findings)
	}
	var lost []string
	for i, a := range actions {
		old, ok := strings.CutPrefix(a, "lose ")
		if !ok {
			continue
		}
		lost = append(lost, old)
		if i+3 >= len(actions) {
			break // the run ended in the middle of it
		}
		next := actions[i+1 : i+4]
		if actions[i-1] != "kill "+old || next[0] != "coordinators.remove "+old || !strings.HasPrefix(next[1], "add c") ||
			next[2] != "coordinators.add "+strings.TrimPrefix(next[1], "add ") {
			t.Fatalf("lose %s: %q, want kill, lose, coordinators.remove, add, coordinators.add", old, actions[i-1:i+4])
		}
		for _, later := range actions[i+2:] {
			if strings.HasSuffix(later, " "+old) || strings.Contains(later, old+"-") || strings.Contains(later, "-"+old+" ") {
				t.Fatalf("%q after %s was lost", later, old)
			}
		}
	}
	if len(lost) < 2 {
		t.Fatalf("lost %v in %d actions, want at least two", lost, len(actions))
	}
	if changed < 2*len(lost)-1 {
		t.Errorf("the load heard of %d changes for %d lost coordinators", changed, len(lost))
	}
	if got := s.Coordinators(); len(got) != 3 {
		t.Errorf("coordinators %v, want three", got)
	}
	if !slices.ContainsFunc(f.rec.history().Events, func(e Event) bool {
		return strings.HasPrefix(e.What, "lose follower ") && strings.Contains(e.What, "joined in its place")
	}) {
		t.Error("no event for a lost follower")
	}
}

// A group whose members, after a lose-follower, still include the lost
// coordinator (it came back under its old name, or was never removed)
// is a finding.
func TestLoseFollowerFindsTheOldNameBack(t *testing.T) {
	s := newScriptedGroup(0, -1)
	s.members = func(coords []string) []string { return append(coords, "c2", "c3") } // whichever was lost is still listed
	cfg := tiny(LoseFollower)
	cfg.LeaderWait = 50 * time.Millisecond
	f := newFaulter(1, cfg, s, newRecorder(), s.watch())
	if err := f.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, _, findings := f.tally()
	if len(findings) != 1 || !strings.Contains(findings[0], "the group's members are") {
		t.Fatalf("findings %q", findings)
	}
}

func TestNewCoordinatorName(t *testing.T) {
	for _, c := range []struct {
		used []string
		want string
	}{{[]string{"c1", "c2", "c3"}, "c4"}, {[]string{"c1", "c3", "c4", "c2"}, "c5"}, {[]string{"a", "b"}, "c1"}, {[]string{"c01", "c1"}, "c2"}} {
		if got := newCoordinatorName(c.used); got != c.want {
			t.Errorf("newCoordinatorName(%v) = %s, want %s", c.used, got, c.want)
		}
	}
}
