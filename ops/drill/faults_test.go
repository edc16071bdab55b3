package drill

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// scripted is a Cluster that records what the faulter asks of it.
type scripted struct {
	Static
	mu      sync.Mutex
	actions []string
	enough  chan struct{} // closed once the test has seen enough actions
	want    int
}

func (s *scripted) note(what, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.actions = append(s.actions, what+" "+name)
	if len(s.actions) == s.want {
		close(s.enough)
	}
	return nil
}

func (s *scripted) Kill(_ context.Context, name string) error    { return s.note("kill", name) }
func (s *scripted) Restart(_ context.Context, name string) error { return s.note("restart", name) }
func (s *scripted) Pause(_ context.Context, name string) error   { return s.note("pause", name) }
func (s *scripted) Resume(_ context.Context, name string) error  { return s.note("resume", name) }

// schedule runs a faulter with tiny durations until it has acted n times.
func schedule(t *testing.T, seed uint64, n int) []string {
	return scheduleOf(t, seed, n, FaultConfig{Every: time.Microsecond, MaxDown: time.Microsecond,
		PauseMin: time.Microsecond, PauseMax: 2 * time.Microsecond})
}

func scheduleOf(t *testing.T, seed uint64, n int, cfg FaultConfig) []string {
	s := &scripted{Static: *NewStatic("", []string{"db1=u1", "db2=u2", "db3=u3"}), enough: make(chan struct{}), want: n}
	f := newFaulter(seed, cfg, s, newRecorder())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.run(ctx) }()
	<-s.enough
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.actions[:n]
}

func TestFaultScheduleIsSeeded(t *testing.T) {
	a, b := schedule(t, 42, 60), schedule(t, 42, 60)
	if !slices.Equal(a, b) {
		t.Fatalf("one seed, two schedules:\n%q\n%q", a, b)
	}
	if c := schedule(t, 43, 60); slices.Equal(a, c) {
		t.Fatalf("seeds 42 and 43 gave the same schedule %q", a)
	}
	// Every fault is finished before the next starts, and the first three
	// are one of each kind.
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

// The kill profile (mage drill N): N coordinator kills, each followed by
// its restart, and nothing else; then the faulter stops by itself.
func TestCoordinatorKillsProfile(t *testing.T) {
	cfg := CoordinatorKills(3, time.Microsecond)
	cfg.MaxDown = time.Microsecond
	s := &scripted{Static: *NewStatic("", []string{"db1=u1", "db2=u2"}), enough: make(chan struct{}), want: -1}
	f := newFaulter(1, cfg, s, newRecorder())
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
