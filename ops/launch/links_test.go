package launch

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twopc/twopc/api"
	"github.com/twopc/twopc/coordinator"
	"github.com/twopc/twopc/internal/faultproxy"
	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/peer"
)

// until polls cond (a state of the cluster, which has no event to wait
// on); the bound is a guard, not a measurement.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

// With NetworkFaults all traffic between the coordinator and a
// participant crosses their link, both ways: here p1 holds a transaction
// prepared while every call of the coordinator to it is black-holed, and
// can only settle it by asking the coordinator through the Backward
// proxy. The drill's direct URLs bypass the faults.
func TestLinksCarryTheTrafficBothWays(t *testing.T) {
	// The coordinator's next call to p1 (the abort) waits for the
	// prepare's lost reply until the prepare timeout: that is the time
	// the test has to black-hole p1's calls (a margin, never waited out).
	c := startWith(t, Config{NetworkFaults: true, PrepareTimeout: 3 * time.Second,
		ResolveAfter: 200 * time.Millisecond, ResolveInterval: 100 * time.Millisecond})
	ctx := context.Background()
	l := c.Link("p1")
	status := api.NewClient(c.CoordinatorURL(), c.ClientHTTP())
	st, err := status.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Participants[0].URL; !strings.Contains(got, l.Forward.Addr()) {
		t.Fatalf("the coordinator calls p1 at %s, not through its link (%s)", got, l.Forward.Addr())
	}
	if _, err := call(t, c.CoordinatorURL(), c.ClientHTTP(), "put", "k", "v1"); err != nil {
		t.Fatal(err)
	}

	p1 := peer.NewClient(c.URL("p1"), c.PeerHTTP(), 0) // direct: no faults
	prepared := func() int {
		pts, err := p1.PreparedTxs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(pts)
	}
	// The put's commits go out after its answer: wait for p1's ack, or
	// the drop would catch it and keep k locked at the coordinator.
	until(t, "the put is acknowledged everywhere", func() bool {
		st, err := status.Status(ctx)
		return err == nil && st.InDoubt == 0
	})
	endVotes := l.Forward.Drop(faultproxy.Down)
	done := make(chan error, 1)
	go func() { _, err := call(t, c.CoordinatorURL(), c.ClientHTTP(), "put", "k", "v2"); done <- err }()
	until(t, "p1 holds the put prepared", func() bool { return prepared() == 1 })
	endCalls := l.Forward.Drop(faultproxy.Up) // the abort will not reach p1
	var f *rpc.Fault
	if err := <-done; !errors.As(err, &f) || f.Code != rpc.Unavailable {
		t.Fatalf("put with p1's votes lost: %v, want fault %d", err, rpc.Unavailable)
	}
	until(t, "p1 asked the coordinator and aborted", func() bool { return prepared() == 0 })
	if s := l.Backward.Stats(); s.Accepted == 0 || s.Delivered[faultproxy.Up] == 0 {
		t.Fatalf("p1 settled without asking through its link: %+v", s)
	}
	endVotes()
	endCalls()
	if v, err := call(t, c.CoordinatorURL(), c.ClientHTTP(), "get", "k"); err != nil || v != "v1" {
		t.Fatalf("get after the faults = %v, %v; want v1", v, err)
	}
	// The coordinator's abort to p1 is still out on a connection whose
	// request was black-holed, until its deadline, and p1's writes queue
	// behind it: a put may abort meanwhile (fault 3: safe to retry).
	until(t, "a put succeeds after the faults", func() bool {
		_, err := call(t, c.CoordinatorURL(), c.ClientHTTP(), "put", "k", "v3")
		if err != nil && (!errors.As(err, &f) || f.Code != rpc.Unavailable) {
			t.Fatalf("put after the faults: %v", err)
		}
		return err == nil
	})

	end, err := c.LinkFault(ctx, c.Coordinator(), "p2", "cut", "both", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := call(t, c.CoordinatorURL(), c.ClientHTTP(), "put", "k", "v4"); !errors.As(err, &f) || f.Code != rpc.Unavailable {
		t.Fatalf("put with p2 cut off: %v, want fault %d", err, rpc.Unavailable)
	}
	end()
	if _, err := c.LinkFault(ctx, c.Coordinator(), "p9", "cut", "both", 0); err == nil {
		t.Fatal("a fault on a link to no participant")
	}
}

// Without NetworkFaults there is nothing to fault, and the drill is told
// so in the way it understands.
func TestLinkFaultUnsupportedWithoutProxies(t *testing.T) {
	c := &Cluster{}
	if _, err := c.LinkFault(context.Background(), "coordinator", "p1", "drop", "up", 0); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("LinkFault without proxies: %v, want ErrUnsupported", err)
	}
}

// A wiped participant comes back empty under its name and address.
func TestWipeRestartsAParticipantEmpty(t *testing.T) {
	c := start(t)
	ctx := context.Background()
	if _, err := call(t, c.CoordinatorURL(), c.ClientHTTP(), "put", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := c.Wipe(ctx, "p2"); err == nil {
		t.Fatal("wiped a running participant")
	}
	if err := c.Wipe(ctx, c.Coordinator()); err == nil {
		t.Fatal("wiped the coordinator")
	}
	if err := c.Kill(ctx, "p2"); err != nil {
		t.Fatal(err)
	}
	if err := c.Wipe(ctx, "p2"); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(ctx, "p2"); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int64{"p1": 1, "p2": 0} {
		d, err := peer.NewClient(c.URL(name), c.PeerHTTP(), 0).Digest(ctx)
		if err != nil || d.Keys != want {
			t.Fatalf("%s digest %+v, %v: want %d keys", name, d, err, want)
		}
	}
}

// With several coordinators, every coordinator reaches every participant
// and every other coordinator through a link of its own: black-holing
// the leader's links to the others deposes it (another coordinator
// leads, in a higher term), and the new leader writes through its own
// links to the participants; healed, the old leader follows.
func TestLinksBetweenCoordinators(t *testing.T) {
	c := startWith(t, Config{Coordinators: 3, NetworkFaults: true})
	ctx := context.Background()
	status := func(name string) (coordinator.Status, error) { return statusOf(ctx, c, name) }
	st, err := status(c.Coordinator())
	if err != nil {
		t.Fatal(err)
	}
	old, term := st.Leader, st.Term
	var others []string
	var ends []func()
	for _, n := range c.Coordinators() {
		if n == old {
			continue
		}
		others = append(others, n)
		end, err := c.LinkFault(ctx, old, n, "drop", "both", 0)
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, end)
	}
	var now string
	until(t, "another coordinator leads", func() bool {
		st, err := status(others[0])
		now = st.Leader
		return err == nil && st.Leader != old && st.Leader != "" && st.Term > term
	})
	if _, err := call(t, c.URL(now), c.ClientHTTP(), "put", "k", "v"); err != nil {
		t.Fatalf("put at the new leader %s: %v", now, err)
	}
	for _, p := range c.Participants() {
		if s := c.LinkBetween(now, p).Forward.Stats(); s.Accepted == 0 {
			t.Errorf("%s wrote without calling %s through their link", now, p)
		}
	}
	if _, err := c.LinkFault(ctx, old, old, "cut", "both", 0); err == nil {
		t.Fatal("a fault on a link from a coordinator to itself")
	}
	for _, end := range ends {
		end()
	}
	until(t, "the old leader follows the new one", func() bool {
		st, err := status(old)
		return err == nil && st.Leader == now
	})
}

// statusOf is the status of the coordinator called name, within 2 s.
func statusOf(ctx context.Context, c *Cluster, name string) (coordinator.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return api.NewClient(c.URL(name), c.ClientHTTP()).Status(ctx)
}
