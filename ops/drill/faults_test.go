package drill

import (
	"context"
	"fmt"
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

func (s *scripted) note(what string, role Role, i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.actions = append(s.actions, fmt.Sprintf("%s %v %d", what, role, i))
	if len(s.actions) == s.want {
		close(s.enough)
	}
	return nil
}

func (s *scripted) Kill(_ context.Context, r Role, i int) error    { return s.note("kill", r, i) }
func (s *scripted) Restart(_ context.Context, r Role, i int) error { return s.note("restart", r, i) }
func (s *scripted) Pause(_ context.Context, r Role, i int) error   { return s.note("pause", r, i) }
func (s *scripted) Resume(_ context.Context, r Role, i int) error  { return s.note("resume", r, i) }

// schedule runs a faulter with tiny durations until it has acted n times.
func schedule(t *testing.T, seed uint64, n int) []string {
	s := &scripted{Static: Static{Participants: []string{"a", "b", "c"}}, enough: make(chan struct{}), want: n}
	f := newFaulter(seed, FaultConfig{Every: time.Microsecond, MaxDown: time.Microsecond,
		PauseMin: time.Microsecond, PauseMax: 2 * time.Microsecond}, s, newRecorder())
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
		f := strings.Fields(a[i]) // what, role, index
		undo := map[string]string{"kill": "restart", "pause": "resume"}[f[0]]
		if undo == "" {
			t.Fatalf("action %d is %q, want the start of a fault", i, a[i])
		}
		if want := undo + " " + f[1] + " " + f[2]; a[i+1] != want {
			t.Fatalf("action %d is %q, want %q", i+1, a[i+1], want)
		}
		if i < 6 {
			kinds[f[0]+" "+f[1]] = true
		}
	}
	if len(kinds) != 3 {
		t.Fatalf("the first three faults are not one of each kind: %q", a[:6])
	}
}
