package participant

import (
	"path/filepath"
	"slices"
	"testing"
)

// With several coordinators, a question goes to each in turn until one
// answers, and the next question starts from the one that answered.
func TestResolveAsksCoordinatorsInTurn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s := open(t, path)
	for _, id := range []string{"1.1", "1.2", "1.3"} {
		mustVote(t, s, id, put("k"+id, "v"), yes)
	}
	s.Close()
	s = open(t, path) // reloaded: every one is asked at once

	down, other := &fakeResolver{}, &fakeResolver{}
	up := &fakeResolver{outcomes: map[string]bool{"1.1": true, "1.2": false}}
	n, err := s.Resolve(ctx, NewCoordinators(down, up, other), 0)
	if n != 2 || err == nil {
		t.Fatalf("resolve: n=%d err=%v; want 2, and an error for 1.3, which nobody knows", n, err)
	}
	if !slices.Equal(down.asked, []string{"1.1", "1.3"}) {
		t.Errorf("the coordinator that is down was asked %v; want the first question, and the one only it was left to answer", down.asked)
	}
	if !slices.Equal(up.asked, []string{"1.1", "1.2", "1.3"}) {
		t.Errorf("the coordinator that answers was asked %v; want every question", up.asked)
	}
	if !slices.Equal(other.asked, []string{"1.3"}) {
		t.Errorf("the third coordinator was asked %v; want only what the second could not answer", other.asked)
	}
	if r := mustRead(t, s, "k1.1"); !r.Entry.Found || r.Pending != "" {
		t.Fatalf("1.1 not committed: %+v", r)
	}
	if r := mustRead(t, s, "k1.3"); r.Pending != "1.3" {
		t.Fatalf("1.3, unanswered, should stay prepared: %+v", r)
	}
}
