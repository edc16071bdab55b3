package launch

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/twopc/twopc/coordinator"
	"github.com/twopc/twopc/internal/rpc"
)

// A coordinator lost with its raft log is replaced as the README says:
// killed, its log deleted, removed from the group, and a new coordinator
// under a new name joins; the group has three members again and one
// leader, which all three name, and writes go on. The old name cannot
// come back: neither launch nor the group takes it.
func TestLoseACoordinatorAndAddANewOne(t *testing.T) {
	c := startWith(t, Config{Coordinators: 3, NetworkFaults: true, PrepareTimeout: time.Second})
	ctx := context.Background()
	status := func(name string) (coordinator.Status, error) { return statusOf(ctx, c, name) }
	st, err := status(c.Coordinator())
	if err != nil {
		t.Fatal(err)
	}
	leader := st.Leader
	lost := slices.DeleteFunc(c.Coordinators(), func(n string) bool { return n == leader })[0]
	if _, err := call(t, c.URL(leader), c.ClientHTTP(), "put", "k", "before"); err != nil {
		t.Fatal(err)
	}
	if err := c.LoseCoordinator(ctx, lost); err == nil {
		t.Fatal("LoseCoordinator of a running coordinator")
	}
	if err := c.Kill(ctx, lost); err != nil {
		t.Fatal(err)
	}
	log := c.TxlogPathOf(lost)
	if err := c.LoseCoordinator(ctx, lost); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(log); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s's log %s: %v, want it deleted", lost, log, err)
	}
	if slices.Contains(c.Coordinators(), lost) || c.URL(lost) != "" || c.Process(lost) != nil {
		t.Fatalf("%s is still known: coordinators %v", lost, c.Coordinators())
	}
	if err := c.Healthy(ctx); err != nil {
		t.Fatalf("Healthy with %s forgotten: %v", lost, err)
	}
	if _, err := call(t, c.URL(leader), c.PeerHTTP(), "coordinators.remove", lost); err != nil {
		t.Fatal(err)
	}
	members := map[string]string{}
	for _, n := range c.Coordinators() {
		members[n] = c.URL(n)
	}
	if _, err := c.AddCoordinator(ctx, lost, members); err == nil {
		t.Fatalf("AddCoordinator took the lost coordinator's name %s", lost)
	}
	url, err := c.AddCoordinator(ctx, "c4", members)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := call(t, c.URL(leader), c.PeerHTTP(), "coordinators.add", "c4", url); err != nil {
		t.Fatal(err)
	}
	// The group refuses the old name back, whatever serves at its URL.
	_, err = call(t, c.URL(leader), c.PeerHTTP(), "coordinators.add", lost, url)
	if f := (*rpc.Fault)(nil); !errors.As(err, &f) || f.Code != rpc.InvalidParams {
		t.Fatalf("coordinators.add %s (removed) = %v, want fault %d", lost, err, rpc.InvalidParams)
	}
	if got := c.Coordinators(); len(got) != 3 || !slices.Contains(got, "c4") {
		t.Fatalf("coordinators %v, want 3 with c4", got)
	}
	until(t, "c4 follows the leader", func() bool {
		st, err := status("c4")
		return err == nil && st.Leader == leader
	})
	res, err := call(t, c.URL("c4"), c.ClientHTTP(), "coordinators.list")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range res.([]any) {
		names = append(names, e.(map[string]any)["name"].(string))
	}
	slices.Sort(names)
	if want := slices.Sorted(slices.Values(c.Coordinators())); !slices.Equal(names, want) {
		t.Fatalf("coordinators.list %v, want %v", names, want)
	}
	for _, n := range c.Coordinators() {
		if st, err := status(n); err != nil || st.Leader != leader {
			t.Fatalf("%s: status %+v, %v; want %s leading", n, st, err, leader)
		}
	}
	// The new member counts: with it and the leader, the group writes
	// with another member killed; and it reaches the participants
	// through links of its own.
	other := slices.DeleteFunc(c.Coordinators(), func(n string) bool { return n == leader || n == "c4" })[0]
	if err := c.Kill(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := call(t, c.URL("c4"), c.ClientHTTP(), "put", "k", "after"); err != nil {
		t.Fatalf("put through c4 with %s down: %v", other, err)
	}
	if err := c.Restart(ctx, other); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Participants() {
		if c.LinkBetween("c4", p) == nil {
			t.Errorf("no link from c4 to %s", p)
		}
	}
	if err := c.Healthy(ctx); err != nil {
		t.Fatal(err)
	}
}
