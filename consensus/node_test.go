package consensus

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twopc/twopc/protocol"
)

// group is coordinators in one process, over real HTTP on loopback.
type group struct {
	t     testing.TB
	dir   string
	peers map[string]string
	srv   map[string]*httptest.Server
	mu    sync.Mutex
	nodes map[string]*Node
	roles chan named
	// snapshotEntries is Config.SnapshotEntries for nodes started now.
	snapshotEntries uint64
	requests        atomic.Int64 // raft requests served, by all
}

type named struct {
	name string
	Role
}

func newGroup(t testing.TB, names ...string) *group {
	g := &group{t: t, dir: t.TempDir(), peers: map[string]string{}, srv: map[string]*httptest.Server{},
		nodes: map[string]*Node{}, roles: make(chan named, 1024)}
	for _, name := range names {
		g.serve(name)
	}
	for _, name := range names {
		g.start(name)
	}
	t.Cleanup(func() {
		g.mu.Lock()
		var all []string
		for n := range g.nodes {
			all = append(all, n)
		}
		g.mu.Unlock()
		for _, name := range all {
			g.stop(name)
		}
	})
	return g
}

// serve gives the coordinator called name an HTTP server and a URL.
func (g *group) serve(name string) {
	{
		t := g.t
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			g.requests.Add(1)
			g.mu.Lock()
			n := g.nodes[name]
			g.mu.Unlock()
			if n == nil {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			n.Handler().ServeHTTP(w, r)
		}))
		t.Cleanup(s.Close)
		g.srv[name], g.peers[name] = s, s.URL+"/RPC2"
	}
}

func (g *group) start(name string) *Node { return g.startWith(name, false) }

// startWith starts the coordinator called name; join: as one added to
// the group (it waits for the log instead of founding a group).
func (g *group) startWith(name string, join bool) *Node {
	return g.startKnowing(name, join, g.peers)
}

// startKnowing starts the coordinator called name with peers as its flags
// (the group's own map names every coordinator ever served).
func (g *group) startKnowing(name string, join bool, peers map[string]string) *Node {
	n, err := Start(Config{Name: name, Peers: peers, Join: join, Path: filepath.Join(g.dir, name+".raftlog"),
		Client: http.DefaultClient, Tick: 10 * time.Millisecond, SnapshotEntries: g.snapshotEntries,
		OnRole: func(r Role) { g.roles <- named{name, r} }})
	if err != nil {
		g.t.Fatal(err)
	}
	g.mu.Lock()
	g.nodes[name] = n
	g.mu.Unlock()
	return n
}

func (g *group) stop(name string) {
	g.mu.Lock()
	n := g.nodes[name]
	delete(g.nodes, name)
	g.mu.Unlock()
	if n != nil {
		n.Stop()
	}
}

// serving waits for a coordinator other than not to serve.
func (g *group) serving(not string) named {
	g.t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case r := <-g.roles:
			if r.Serving && r.name != not {
				return r
			}
		case <-timeout:
			g.t.Fatal("no coordinator serves after 30 s")
		}
	}
}

func (g *group) node(name string) *Node {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.nodes[name]
}

func staged(id string) protocol.Record {
	return protocol.Record{Kind: protocol.KindStaged, TxID: id, Participants: []string{"p1", "p2"}, Keys: []string{"k"}}
}

func TestLeaderFailover(t *testing.T) {
	g := newGroup(t, "c1", "c2", "c3")
	first := g.serving("")
	log := g.node(first.name).Log(first.Term)
	for i := 1; i <= 20; i++ {
		if err := log.Append(staged(fmt.Sprintf("%d.%d", first.Term, i))); err != nil {
			t.Fatal(err)
		}
	}
	// Commit 1..10 and abort 11..15: 16..20 stay pending.
	for i := 1; i <= 15; i++ {
		kind := protocol.KindEnd
		if i > 10 {
			kind = protocol.KindAbort
		}
		if err := log.Append(protocol.Record{Kind: kind, TxID: fmt.Sprintf("%d.%d", first.Term, i)}); err != nil {
			t.Fatal(err)
		}
	}
	g.stop(first.name)
	if err := log.Append(staged("x.1")); err == nil {
		t.Fatal("a stopped leader's append succeeded")
	}
	next := g.serving(first.name)
	if next.Term <= first.Term {
		t.Fatalf("new term %d not above %d", next.Term, first.Term)
	}
	if next.State.Epoch != next.Term {
		t.Fatalf("epoch %d, term %d", next.State.Epoch, next.Term)
	}
	if len(next.State.Pending) != 5 || next.State.Pending[0].TxID != fmt.Sprintf("%d.16", first.Term) {
		t.Fatalf("pending after failover: %v", next.State.Pending)
	}
	// The old leader comes back as a follower of the new one.
	g.start(first.name)
	if err := g.node(next.name).Log(next.Term).Append(protocol.Record{Kind: protocol.KindEnd, TxID: fmt.Sprintf("%d.16", first.Term)}); err != nil {
		t.Fatal(err)
	}
}

// Compaction to snapshots, a whole-group restart, and a coordinator that
// was down while the log was compacted past what it has (it gets the
// snapshot): every one ends with the same state.
func TestSnapshotsAndRestart(t *testing.T) {
	g := newGroup(t, "c1", "c2", "c3")
	g.snapshotEntries = 8
	for _, n := range []string{"c1", "c2", "c3"} { // restart with compaction on
		g.stop(n)
		g.start(n)
	}
	r := g.serving("")
	down := "c1"
	if r.name == down {
		down = "c2"
	}
	g.stop(down)
	log := g.node(r.name).Log(r.Term)
	for i := 1; i <= 50; i++ {
		id := fmt.Sprintf("%d.%d", r.Term, i)
		must(t, log.Append(staged(id)))
		if i%2 == 0 {
			must(t, log.Append(protocol.Record{Kind: protocol.KindEnd, TxID: id}))
		}
	}
	g.start(down)
	for _, n := range []string{"c1", "c2", "c3"} {
		g.stop(n)
	}
	for _, n := range []string{"c1", "c2", "c3"} {
		g.start(n)
	}
	next := g.serving("")
	if len(next.State.Pending) != 25 || next.State.Pending[0].TxID != fmt.Sprintf("%d.1", r.Term) {
		t.Fatalf("after compaction and restart: %d pending, %v", len(next.State.Pending), next.State.Pending)
	}
	// The one that was down holds the same log: with the other two
	// stopped, it and one more elect, and agree.
	g.stop(next.name)
	other := g.serving(next.name)
	if len(other.State.Pending) != 25 {
		t.Fatalf("%s after the restart: %d pending", other.name, len(other.State.Pending))
	}
}
