package consensus

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// A leader confirms it leads only with a majority's answer: concurrent
// calls on a whole group succeed; a follower, or a leader asked about
// another term, is refused at once; a leader left alone never confirms.
func TestConfirmLeaderNeedsAMajority(t *testing.T) {
	g := newGroup(t, "c1", "c2", "c3")
	r := g.serving("")
	leader := g.node(r.name)
	ctx := context.Background()

	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- leader.Log(r.Term).ConfirmLeader(ctx)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("the leader of a whole group could not confirm it leads: %v", err)
		}
	}
	if err := leader.ConfirmLeader(ctx, r.Term+1); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("confirmed for a term it does not serve in: %v", err)
	}
	var followers []string
	for _, name := range []string{"c1", "c2", "c3"} {
		if name != r.name {
			followers = append(followers, name)
		}
	}
	if err := g.node(followers[0]).ConfirmLeader(ctx, r.Term); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a follower confirmed it leads: %v", err)
	}

	// Alone, it either steps down (raft's CheckQuorum) or the caller gives
	// up; it must not confirm. The deadline only bounds the test.
	for _, name := range followers {
		g.stop(name)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := leader.ConfirmLeader(ctx, r.Term); err == nil {
		t.Fatal("a leader whose followers are all gone confirmed it leads")
	}
}
