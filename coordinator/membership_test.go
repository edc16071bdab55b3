package coordinator

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twopc/twopc/participant"
)

// later is a moment well past ExcludeAfter (an hour in these tests, so
// that the coordinator's own watcher never excludes anyone): a check at
// that moment finds silent exactly the participants whose last call
// failed, whatever the machine's speed.
func later() int64 { return time.Now().Add(2 * time.Hour).UnixNano() }

// checkLater runs a membership check at later(), once no call is out (an
// abort still on its way to a healthy participant would count as
// unanswered).
func (cl *cluster) checkLater() {
	cl.t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a bound on a hang, not a timing assertion
	for _, m := range cl.c.roster.Load().members {
		for m.inflight.Load() > 0 {
			if time.Now().After(deadline) {
				cl.t.Fatalf("%s: calls still out", m.Name)
			}
			time.Sleep(time.Millisecond) // polling a condition, bounded above
		}
	}
	cl.c.checkMembers(later())
}

func (cl *cluster) failingPut(key, value string) {
	cl.t.Helper()
	if err := cl.put(key, value); !errors.Is(err, ErrUnavailable) {
		cl.t.Fatalf("put %q: %v, want ErrUnavailable", key, err)
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
	cl.excludeAfter = time.Hour
	cl.start(-1)
	cl.mustPut("a", "1")

	cl.parts[2].kill()
	cl.failingPut("b", "2")
	cl.checkLater()
	cl.mustPut("b", "2")
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
	cl.excludeAfter = time.Hour
	cl.start(-1)
	cl.parts[2].kill()
	cl.failingPut("a", "1")
	cl.checkLater()
	cl.mustPut("a", "1")
	cl.parts[1].kill()
	cl.failingPut("b", "2")
	if !cl.c.silent(cl.c.roster.Load().byName["p2"], later()) {
		t.Fatal("p2 is not silent after a failed call")
	}
	cl.checkLater()
	if got := cl.states(); got != "p1=active,p2=offline,p3=excluded" {
		t.Fatalf("states %s, want p2 kept in the write set", got)
	}
	cl.failingPut("b", "2")
}

func mustStore(t *testing.T, p *swappable) *participant.Store {
	t.Helper()
	st, err := p.get()
	if err != nil {
		t.Fatal(err)
	}
	return st
}
