package consensus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/twopc/twopc/protocol"
)

// A coordinator is added (it joins with an empty log and gets the log,
// compacted, from the leader) and another removed; the group goes on,
// and the state survives losing the founders.
func TestAddAndRemoveCoordinators(t *testing.T) {
	g := newGroup(t, "c1", "c2", "c3")
	g.snapshotEntries = 8
	for _, n := range []string{"c1", "c2", "c3"} { // compaction on
		g.stop(n)
		g.start(n)
	}
	r := g.serving("")
	log := g.node(r.name).Log(r.Term)
	for i := 1; i <= 30; i++ {
		must(t, log.Append(staged(fmt.Sprintf("%d.%d", r.Term, i))))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	g.serve("c4")
	g.startWith("c4", true)
	must(t, g.node(r.name).AddPeer(ctx, "c4", g.peers["c4"]))
	if err := g.node(r.name).AddPeer(ctx, "c4", g.peers["c4"]); !errors.Is(err, ErrMembership) {
		t.Fatalf("adding a member twice: %v", err)
	}
	if err := g.node(r.name).AddPeer(ctx, "c5", "10.0.0.5:7400"); !errors.Is(err, ErrMembership) {
		t.Fatalf("adding a member without an http URL: %v", err)
	}
	if err := g.node(r.name).RemovePeer(ctx, r.name); !errors.Is(err, ErrMembership) {
		t.Fatalf("the leader removing itself: %v", err)
	}
	// Remove a founder that is not the leader.
	gone := "c1"
	if r.name == gone {
		gone = "c2"
	}
	must(t, g.node(r.name).RemovePeer(ctx, gone))
	g.stop(gone)
	if err := g.node(r.name).AddPeer(ctx, gone, g.peers[gone]); !errors.Is(err, ErrMembership) {
		t.Fatalf("re-adding a removed name: %v", err)
	}
	must(t, log.Append(protocol.Record{Kind: protocol.KindEnd, TxID: fmt.Sprintf("%d.1", r.Term)}))

	// Members now: the leader, c4 and one founder. Stop the leader: c4
	// and the founder elect, so c4 must hold the log (a majority of 2).
	g.stop(r.name)
	next := g.serving(r.name)
	if len(next.State.Pending) != 29 {
		t.Fatalf("%s leads with %d pending, want 29", next.name, len(next.State.Pending))
	}
	names := map[string]bool{}
	for _, p := range g.node(next.name).Peers() {
		names[p.Name] = true
	}
	if names[gone] || !names["c4"] {
		t.Fatalf("peers after the changes: %v", g.node(next.name).Peers())
	}
}

// A coordinator reaches the peers its flags name at the flags' URLs,
// whatever URL a snapshot or a membership change carries (its author's
// way there: in the drill, each coordinator reaches the others through
// proxies of its own); a peer the flags do not name is reached at the
// URL the group gave.
func TestFlagsSayHowToReachAPeer(t *testing.T) {
	g := newGroup(t, "c1", "c2", "c3")
	n := g.node("c1")
	n.peers.set(n, Peer{Name: "c2", URL: "http://elsewhere:1/RPC2", ID: NodeID("c2")})
	if got := n.URL("c2"); got != g.peers["c2"] {
		t.Fatalf("c2 reached at %s, want the flags' %s", got, g.peers["c2"])
	}
	n.peers.set(n, Peer{Name: "c9", URL: "http://c9:1/RPC2", ID: NodeID("c9")})
	if got := n.URL("c9"); got != "http://c9:1/RPC2" {
		t.Fatalf("c9 reached at %q, want the group's URL", got)
	}
}

// A coordinator that was down while the group changed comes back knowing
// only the peers of its flags. It must still answer, vote for and follow
// a leader it has never heard of: here the only other live member is one
// added while it was down, so without it no leader could be elected. (A
// 10-minute drill, seed 13458328668986228705, got stuck so: a restarted
// follower refused the new leader's messages as a stranger's.)
func TestRejoinsAGroupThatChangedWhileItWasDown(t *testing.T) {
	g := newGroup(t, "c1", "c2", "c3")
	founders := maps.Clone(g.peers)
	r := g.serving("")
	var back, other string
	for _, n := range []string{"c1", "c2", "c3"} {
		switch {
		case n == r.name:
		case back == "":
			back = n
		default:
			other = n
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g.stop(back)
	g.serve("c4")
	g.startWith("c4", true)
	must(t, g.node(r.name).AddPeer(ctx, "c4", g.peers["c4"]))
	must(t, g.node(r.name).RemovePeer(ctx, other))
	g.stop(other)
	must(t, g.node(r.name).Log(r.Term).Append(staged(fmt.Sprintf("%d.1", r.Term))))
	// Members: the leader, back (down) and c4. Stop the leader and bring
	// back the one that never heard of c4: only the two of them can elect.
	g.stop(r.name)
	g.startKnowing(back, false, founders)
	next := g.serving(r.name)
	if len(next.State.Pending) != 1 {
		t.Fatalf("%s leads with %d pending, want 1", next.name, len(next.State.Pending))
	}
	// A decision needs both: back answers the new leader.
	must(t, g.node(next.name).Log(next.Term).Append(staged(fmt.Sprintf("%d.1", next.Term))))
}
