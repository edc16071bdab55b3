package coordinator

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twopc/twopc/participant"
)

// eventuallyPut puts until it succeeds; every failure before must be
// fault 3 (unavailable: nothing written). The bound is on a hang, not a
// timing assertion.
func (cl *cluster) eventuallyPut(key, value string) int {
	cl.t.Helper()
	failed := 0
	for deadline := time.Now().Add(30 * time.Second); ; failed++ {
		err := cl.put(key, value)
		if err == nil {
			return failed
		}
		if !errors.Is(err, ErrUnavailable) {
			cl.t.Fatalf("put %q: %v, want success or ErrUnavailable", key, err)
		}
		if time.Now().After(deadline) {
			cl.t.Fatalf("put %q still fails: %v", key, err)
		}
	}
}

func (cl *cluster) states() string {
	var s []string
	for _, p := range cl.c.Status(bg).Participants {
		s = append(s, p.Name+"="+p.State)
	}
	return strings.Join(s, ",")
}

// A participant that stops answering is excluded: writes go on without
// it, reads never use it again, and the log keeps it excluded across a
// restart of the coordinator.
func TestSilentParticipantIsExcluded(t *testing.T) {
	cl := newCluster(t)
	cl.stop()
	cl.excludeAfter = 20 * time.Millisecond
	cl.start(-1)
	cl.mustPut("a", "1")

	cl.parts[2].kill()
	failed := cl.eventuallyPut("b", "2")
	t.Logf("%d puts failed with fault 3 before p3 was excluded", failed)
	if got := cl.states(); got != "p1=active,p2=active,p3=excluded" {
		t.Fatalf("states %s", got)
	}
	if data, err := os.ReadFile(cl.logPath); err != nil || !strings.Contains(string(data), " exclude p3\n") {
		t.Fatalf("the log has no exclude record for p3 (%v)", err)
	}

	// p3 comes back behind (it never saw b): reads must not use it.
	cl.parts[2].restart(t)
	cl.restart()
	if got := cl.states(); got != "p1=active,p2=active,p3=excluded" {
		t.Fatalf("after a restart, states %s", got)
	}
	cl.mustPut("c", "3") // at once: the write set is p1 and p2
	cl.c.cache.forgetAll([]string{"b"})
	for range 6 { // round-robin over the write set: p3 would answer "not found"
		v, err := cl.c.Get(bg, "b")
		if err != nil || string(v.Data) != "2" {
			t.Fatalf("get b = %q, %v; want 2 (read from an excluded participant?)", v.Data, err)
		}
		cl.c.cache.forgetAll([]string{"b"})
	}
	cl.settle()
	d1, _ := mustStore(t, cl.parts[0]).Digest(bg)
	d2, _ := mustStore(t, cl.parts[1]).Digest(bg)
	d3, _ := mustStore(t, cl.parts[2]).Digest(bg)
	if d1 != d2 || d1 == d3 {
		t.Errorf("digests: p1 %+v p2 %+v p3 %+v; want p1 = p2 (the write set) and p3 behind", d1, d2, d3)
	}
}

// No exclusion takes the write set below MinParticipants (a majority of
// three by default): with two participants silent, one is excluded and
// writes then fail with fault 3 rather than commit on one replica.
func TestExclusionKeepsMinParticipants(t *testing.T) {
	cl := newCluster(t)
	cl.stop()
	cl.excludeAfter = 20 * time.Millisecond
	cl.start(-1)
	cl.parts[2].kill()
	cl.eventuallyPut("a", "1")
	cl.parts[1].kill()
	if err := cl.put("b", "2"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("put with p2 down: %v, want ErrUnavailable", err)
	}
	p2 := cl.c.byName["p2"]
	for !cl.c.silent(p2, time.Now().UnixNano()) { // it has been silent long enough
		if err := cl.put("b", "2"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("put with p2 down: %v, want ErrUnavailable", err)
		}
	}
	cl.c.checkMembers(time.Now().UnixNano())
	if got := cl.states(); got != "p1=active,p2=offline,p3=excluded" {
		t.Fatalf("states %s, want p2 kept in the write set", got)
	}
	if err := cl.put("b", "2"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("put with p2 down and not excluded: %v, want ErrUnavailable", err)
	}
}

func mustStore(t *testing.T, p *swappable) *participant.Store {
	t.Helper()
	st, err := p.get()
	if err != nil {
		t.Fatal(err)
	}
	return st
}
