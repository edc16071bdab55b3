package coordinator

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
)

// addPart creates a participant the coordinator is not configured with,
// for AddMember (its URL is its path: see cluster.start's Dial).
func (cl *cluster) addPart(name string) *swappable {
	p := &swappable{name: name, path: filepath.Join(cl.dir, name+".db")}
	p.restart(cl.t)
	cl.parts = append(cl.parts, p)
	cl.t.Cleanup(p.kill)
	return p
}

// A participant added by an operator catches up and joins the write set;
// one removed is gone for good, also across a restart, and the log keeps
// both decisions. A commit that waited for the removed one is no longer
// in doubt.
func TestAddAndRemoveMembers(t *testing.T) {
	cl := newCluster(t)
	for _, k := range []string{"a", "b", "c"} {
		cl.mustPut(k, "1")
	}
	p4 := cl.addPart("p4")
	if err := cl.c.AddMember(bg, "p4", p4.path); err != nil {
		t.Fatal(err)
	}
	if got := cl.states(); got != "p1=active,p2=active,p3=active,p4=excluded" {
		t.Fatalf("states %s", got)
	}
	if err := cl.c.AddMember(bg, "p4", p4.path); !errors.Is(err, ErrMembership) {
		t.Fatalf("adding p4 again: %v", err)
	}
	cl.mustPut("d", "1") // p4 is not needed yet
	if err := cl.c.catchUp(cl.c.roster.Load().byName["p4"]); err != nil {
		t.Fatal(err)
	}
	cl.mustPut("e", "1")
	cl.settle()
	cl.check(map[string]string{"a": "1", "d": "1", "e": "1"})
	cl.restart()
	if got := cl.states(); got != "p1=active,p2=active,p3=active,p4=active" {
		t.Fatalf("after a restart, states %s", got)
	}

	// p3 dies holding a commit; removing it ends the doubt.
	p3 := cl.parts[2]
	var once sync.Once
	p3.afterPrepare = func() { once.Do(p3.kill) }
	cl.mustPut("f", "1")
	if n := cl.c.counts.inDoubt.Load(); n != 1 {
		t.Fatalf("in doubt with p3 down: %d, want 1", n)
	}
	if err := cl.c.RemoveMember(bg, "p3"); err != nil {
		t.Fatal(err)
	}
	cl.settle()
	cl.mustPut("g", "1")
	cl.settle()
	cl.check(map[string]string{"f": "1", "g": "1"})
	cl.restart() // p3 is still configured: the log leaves it out
	if got := cl.states(); got != "p1=active,p2=active,p4=active" {
		t.Fatalf("after a restart, states %s", got)
	}
	cl.mustPut("h", "1")
	cl.settle()
	cl.check(map[string]string{"h": "1"})

	// Below the minimum (a majority of three): refused, nothing changes.
	cl.parts[3].kill()
	cl.exclude("p4")
	if err := cl.c.RemoveMember(bg, "p1"); !errors.Is(err, ErrMembership) {
		t.Fatalf("removing p1 with p4 excluded: %v", err)
	}
	if err := cl.c.RemoveMember(bg, "p9"); !errors.Is(err, ErrMembership) {
		t.Fatalf("removing an unknown participant: %v", err)
	}
	if got := cl.states(); got != "p1=active,p2=active,p4=excluded" {
		t.Fatalf("states %s", got)
	}
}
