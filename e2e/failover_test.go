package e2e

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twopc/twopc/api"
	"github.com/twopc/twopc/internal/metrics"
	"github.com/twopc/twopc/ops/launch"
)

// Three coordinators: clients write through all of them while the
// leader is killed with SIGKILL twice and paused with SIGSTOP once.
// Another takes over each time, without an operator; afterwards every
// acknowledged put is on every replica, nothing is in doubt, and the
// coordinators agree on one leader.
func TestCoordinatorFailover(t *testing.T) {
	cl := newCluster(t, func(c *launch.Config) { c.Coordinators = 3 })
	var urls []string
	for _, n := range cl.Coordinators() {
		urls = append(urls, cl.URL(n))
	}
	load := startPutLoadAt(t, urls, 8, true)
	for i := range 3 {
		load.WaitAcks(100)
		old := leaderOf(t, cl)
		t0 := time.Now()
		if i < 2 {
			kill(t, cl, old)
		} else if err := cl.Pause(context.Background(), old); err != nil {
			t.Fatal(err)
		}
		load.WaitAcks(100)
		next := leaderOf(t, cl)
		t.Logf("leader %s %s; %s leads, 100 puts later after %v", old, map[bool]string{true: "killed", false: "paused"}[i < 2], next, time.Since(t0).Round(time.Millisecond))
		if next == old {
			t.Fatalf("%s still leads after it was stopped", old)
		}
		if i < 2 {
			start(t, cl, old)
		} else if err := cl.Resume(context.Background(), old); err != nil {
			t.Fatal(err)
		}
	}
	load.WaitAcks(100)
	acked := load.End()
	t.Logf("%d puts acknowledged across 2 leader kills and 1 pause", len(acked))
	sameReplicas(t, cl, cl.ParticipantURLs(), acked)
	// Every coordinator, the deposed ones included, names the same leader.
	leader := leaderOf(t, cl)
	eventually(t, time.Minute, "coordinators agree on the leader", func() error {
		for _, n := range cl.Coordinators() {
			if got := selfView(t, cl, n); got != leader {
				return fmt.Errorf("%s says %q leads, not %s", n, got, leader)
			}
		}
		return nil
	})
}

// leaderOf asks the coordinators which one leads, until one says.
func leaderOf(t *testing.T, cl *launch.Cluster) string {
	t.Helper()
	var leader string
	eventually(t, time.Minute, "a leader", func() error {
		for _, n := range cl.Coordinators() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := api.NewClient(cl.URL(n), nil).Status(ctx)
			cancel()
			if err == nil && st.Role == "leader" {
				leader = st.Leader
				return nil
			}
		}
		return fmt.Errorf("no coordinator says who leads")
	})
	return leader
}

// selfView is who the named coordinator forwards to: its status is the
// leader's, so the name in it is the leader's as the coordinator sees it.
func selfView(t *testing.T, cl *launch.Cluster, name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := api.NewClient(cl.URL(name), nil).Status(ctx)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return st.Leader
}

// A leader cut off from the other coordinators (both paused) answers no
// get, although the value is in its cache and on every participant: it
// cannot know what a newer leader has written since. Once they are back,
// the get is answered.
func TestCutOffLeaderAnswersNoRead(t *testing.T) {
	cl := newCluster(t, func(c *launch.Config) { c.Coordinators = 3 })
	leader := leaderOf(t, cl)
	c := api.NewClient(cl.URL(leader), nil)
	ctx, cancel := ctxTimeout()
	defer cancel()
	if err := c.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "k"); err != nil || v != "v" {
		t.Fatalf("get before the pause: %v, %v", v, err)
	}
	var followers []string
	for _, n := range cl.Coordinators() {
		if n != leader {
			followers = append(followers, n)
		}
	}
	for _, n := range followers {
		if err := cl.Pause(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	v, err := c.Get(ctx, "k")
	if err == nil {
		t.Fatalf("the leader answered a get (%v) with every other coordinator paused", v)
	}
	if !strings.Contains(err.Error(), "fault 3:") {
		t.Fatalf("get with both followers paused: %v, want fault 3 (unavailable, safe to retry)", err)
	}
	t.Logf("get with both followers paused: %v", err)
	for _, n := range followers {
		if err := cl.Resume(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, time.Minute, "a get once the followers are back", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		v, err := api.NewClient(cl.URL(leaderOf(t, cl)), nil).Get(ctx, "k")
		if err == nil && v != "v" {
			t.Fatalf("get after the pause: %v", v)
		}
		return err
	})
}

// In twopc local's shape a follower runs Go code on one CPU, and the
// leader on as many as the process started with (GOMAXPROCS=3 here,
// whatever this machine has), as each coordinator's metrics say. When
// the leader is killed, the next one gets its CPUs back, and the old one
// comes back as a follower on one.
func TestOnlyTheLeaderRunsOnEveryCPU(t *testing.T) {
	t.Setenv("GOMAXPROCS", "3")
	cl := newCluster(t, func(c *launch.Config) { c.Coordinators = 3 })
	roles := func(down string) string {
		var leader string
		eventually(t, time.Minute, "GOMAXPROCS 3 at the leader, 1 at each follower", func() error {
			leader = leaderOf(t, cl) // asked again each time, in case it moved
			for _, n := range cl.Coordinators() {
				if n == down {
					continue
				}
				want := 1.0
				if n == leader {
					want = 3
				}
				if got, err := gomaxprocs(cl.URL(n)); err != nil || got != want {
					return fmt.Errorf("%s (leader %s): GOMAXPROCS %v (%v), want %v", n, leader, got, err, want)
				}
			}
			return nil
		})
		return leader
	}
	old := roles("")
	kill(t, cl, old)
	if next := roles(old); next == old {
		t.Fatalf("%s still leads after it was killed", old)
	}
	start(t, cl, old)
	roles("")
}

// In twopc local's shape each participant runs Go code on one CPU and
// the coordinator on the cores they leave, at least one, when GOMAXPROCS
// is not set.
func TestCoordinatorRunsOnTheCoresParticipantsLeave(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	cl := newCluster(t)
	want := map[string]float64{cl.Coordinator(): float64(max(1, runtime.NumCPU()-len(cl.Participants())))}
	for _, p := range cl.Participants() {
		want[p] = 1
	}
	for n, w := range want {
		if got, err := gomaxprocs(cl.URL(n)); err != nil || got != w {
			t.Errorf("%s: GOMAXPROCS %v (%v), want %v on %d CPUs", n, got, err, w, runtime.NumCPU())
		}
	}
}

// gomaxprocs reads a process's GOMAXPROCS from its metrics.
func gomaxprocs(rpcURL string) (float64, error) {
	code, body, err := fetch(base(rpcURL) + "/metrics")
	if err != nil || code != http.StatusOK {
		return 0, fmt.Errorf("metrics: %d %v", code, err)
	}
	f, err := metrics.Parse(strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	v, ok := f.Value("go_sched_gomaxprocs_threads")
	if !ok {
		return 0, fmt.Errorf("no go_sched_gomaxprocs_threads in the metrics")
	}
	return v, nil
}
