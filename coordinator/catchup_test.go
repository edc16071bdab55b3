package coordinator

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twopc/twopc/protocol"
)

// exclude3 starts a cluster whose p3 is excluded while the others take
// writes it misses, and which holds a transaction prepared that the
// others committed (its commit never reached it). With empty, p3 then
// comes back with an empty database, as a replacement would; else with
// the data it had.
func exclude3(t *testing.T, empty bool, page int) *cluster {
	t.Helper()
	cl := newCluster(t)
	cl.stop()
	cl.excludeAfter = time.Hour
	cl.catchUpPage = page
	cl.start(-1)
	for i := range 10 {
		cl.mustPut(fmt.Sprintf("k%d", i), "old")
	}
	p3 := cl.parts[2]
	var once sync.Once
	p3.afterPrepare = func() { once.Do(func() { p3.kill(); p3.restart(t); p3.kill() }) }
	cl.mustPut("k5", "held") // committed; p3 holds it prepared, and is down
	p3.afterPrepare = nil
	cl.failingPut("x", "1")
	cl.exclude("p3")
	if got := cl.states(); got != "p1=active,p2=active,p3=excluded" {
		t.Fatalf("states %s", got)
	}
	cl.mustPut("k1", "new")
	if _, err := cl.c.Delete(bg, "k2"); err != nil {
		t.Fatal(err)
	}
	cl.mustPut("n1", "new")
	if empty {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(p3.path + suffix)
		}
	}
	p3.restart(t)
	return cl
}

// exclude excludes the participant name now (membership_test.go tests
// when the watcher does it).
func (cl *cluster) exclude(name string) {
	cl.c.membersMu.Lock()
	defer cl.c.membersMu.Unlock()
	cl.c.exclude(cl.c.roster.Load().byName[name], 0)
}

// An excluded participant catches up, whether it kept its data or lost
// it, and rejoins: the replicas are identical, it holds nothing
// prepared, and the next write needs it.
func TestExcludedParticipantCatchesUp(t *testing.T) {
	for _, tc := range []struct {
		name  string
		empty bool
		page  int
	}{{"behind", false, 3}, {"replaced", true, 3}, {"one page", false, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			cl := exclude3(t, tc.empty, tc.page)
			if err := cl.c.catchUp(cl.c.roster.Load().byName["p3"]); err != nil {
				t.Fatal(err)
			}
			if got := cl.states(); got != "p1=active,p2=active,p3=active" {
				t.Fatalf("states %s", got)
			}
			cl.settle()
			cl.check(map[string]string{"k1": "new", "k2": "", "k5": "held", "n1": "new", "k9": "old"})
			cl.mustPut("after", "1")
			cl.settle()
			cl.check(map[string]string{"after": "1"})
			cl.parts[2].kill() // the write set is all three again: a write needs p3
			cl.failingPut("after", "2")
		})
	}
}

// Writes that land during the copy, on keys already copied, reach the
// participant too (dirty keys), and so does a write that is running when
// the catch-up includes it. The log keeps the include across a restart.
func TestCatchUpUnderWrites(t *testing.T) {
	cl := exclude3(t, false, 2)
	p3 := cl.parts[2]
	pages := 0
	var writes sync.WaitGroup
	p3.beforeInstall = func(in *protocol.Install) {
		if in.Reset {
			return
		}
		pages++
		if pages == 3 {
			cl.mustPut("k0", "during") // k0 was on the first page
			if _, err := cl.c.Delete(bg, "k1"); err != nil {
				t.Error(err)
			}
			cl.mustPut("n2", "during")
		}
		if pages == 4 {
			// A write that is still preparing when the catch-up wants to
			// include: its prepare at p1 is held until the include waits
			// for it (drain), which must then let it finish first. (Were
			// the include not to wait, the hold ends after a while, and p3
			// misses the write.)
			release := make(chan struct{})
			var once sync.Once
			cl.parts[0].beforePrepare = func(string) { once.Do(func() { <-release }) }
			writes.Go(func() { cl.mustPut("k3", "racing") })
			writes.Go(func() {
				defer close(release)
				deadline := time.Now().Add(5 * time.Second) // a bound for the planted bug, not a timing assertion
				for time.Now().Before(deadline) {
					cl.c.drainMu.Lock()
					waiting := cl.c.drained != nil
					cl.c.drainMu.Unlock()
					if waiting {
						return
					}
					time.Sleep(time.Millisecond) // polling a condition, bounded above
				}
			})
		}
	}
	if err := cl.c.catchUp(cl.c.roster.Load().byName["p3"]); err != nil {
		t.Fatal(err)
	}
	writes.Wait()
	cl.settle()
	cl.check(map[string]string{"k0": "during", "k1": "", "n2": "during", "k3": "racing", "k5": "held"})
	cl.restart()
	if got := cl.states(); got != "p1=active,p2=active,p3=active" {
		t.Fatalf("after a restart, states %s", got)
	}
	if data, err := os.ReadFile(cl.logPath); err != nil || !strings.Contains(string(data), " include p3\n") {
		t.Fatalf("the log has no include record for p3 (%v)", err)
	}
}

// A catch-up that fails part way (the participant dies, or the
// coordinator does) leaves the participant excluded; the next attempt
// starts over and succeeds.
func TestCatchUpInterrupted(t *testing.T) {
	t.Run("participant killed mid-copy", func(t *testing.T) {
		cl := exclude3(t, true, 2)
		p3 := cl.parts[2]
		installs := 0
		p3.beforeInstall = func(*protocol.Install) {
			if installs++; installs == 3 {
				p3.kill()
			}
		}
		if err := cl.c.catchUp(cl.c.roster.Load().byName["p3"]); err == nil {
			t.Fatal("catch-up succeeded with its participant killed")
		}
		if got := cl.states(); got != "p1=active,p2=active,p3=offline" && got != "p1=active,p2=active,p3=excluded" {
			t.Fatalf("states %s", got)
		}
		p3.beforeInstall = nil
		p3.restart(t)
		cl.mustPut("k7", "meanwhile")
		if err := cl.c.catchUp(cl.c.roster.Load().byName["p3"]); err != nil {
			t.Fatal(err)
		}
		cl.settle()
		cl.check(map[string]string{"k7": "meanwhile"})
	})
	t.Run("source killed mid-copy", func(t *testing.T) {
		cl := exclude3(t, true, 2)
		cl.c.rr.Store(1) // the next source is the write set's first: p1
		installs := 0
		cl.parts[2].beforeInstall = func(*protocol.Install) {
			if installs++; installs == 3 {
				cl.parts[0].kill()
			}
		}
		err := cl.c.catchUp(cl.c.roster.Load().byName["p3"])
		if err == nil || !strings.Contains(err.Error(), "p1") {
			t.Fatalf("catch-up from a killed source: %v", err)
		}
		if got := cl.states(); got != "p1=offline,p2=active,p3=excluded" {
			t.Fatalf("states %s", got)
		}
		cl.parts[2].beforeInstall = nil
		cl.parts[0].restart(t)
		cl.mustPut("k7", "meanwhile")
		if err := cl.c.catchUp(cl.c.roster.Load().byName["p3"]); err != nil {
			t.Fatal(err)
		}
		cl.settle()
		cl.check(map[string]string{"k7": "meanwhile"})
	})
}

// The coordinator is killed after every step of a catch-up (as in
// TestCrashAfterEveryStep): the participant is then either back in the
// write set with an exact copy, or still excluded, and a new catch-up by
// the restarted coordinator brings it back.
func TestCrashDuringCatchUp(t *testing.T) {
	for k := 0; ; k++ {
		cl := exclude3(t, true, 2)
		cl.stop()
		cl.start(k)
		err := cl.c.catchUp(cl.c.roster.Load().byName["p3"])
		crashed := cl.env.isCrashed()
		if !crashed && err != nil {
			t.Fatalf("step %d: no crash, yet %v", k, err)
		}
		cl.restart()
		switch got := cl.states(); got {
		case "p1=active,p2=active,p3=excluded":
			if err == nil {
				t.Fatalf("step %d: catch-up reported success, yet p3 is excluded after a restart", k)
			}
			if err := cl.c.catchUp(cl.c.roster.Load().byName["p3"]); err != nil {
				t.Fatalf("step %d: second catch-up: %v", k, err)
			}
		case "p1=active,p2=active,p3=active":
		default:
			t.Fatalf("step %d: states %s", k, got)
		}
		cl.settle()
		cl.check(map[string]string{"k1": "new", "k2": "", "k5": "held", "n1": "new"})
		cl.mustPut("k1", "after")
		cl.settle()
		cl.check(map[string]string{"k1": "after"})
		cl.stop()
		if !crashed {
			t.Logf("crashed after each of %d steps", k)
			return
		}
	}
}
