package drill

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // to tamper with a replica
	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/ops/launch"
)

// binary is the twopc executable built once by TestMain.
var binary string

func TestMain(m *testing.M) { launch.RunTests(m, &binary) }

// outDir is a folder that outlives a failed test, so that the history,
// the visualization and the process logs it names can still be read.
func outDir(t *testing.T, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "twopc-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

// ciConfig is the bounded drill CI runs: short, but with a fault every
// half second on average, so each run sees a few dozen, faults on links
// overlapping those on processes. Pauses and faults on links last 1.5x
// to 3x the prepare timeout (1s), as twopc drill's do.
func ciConfig(t *testing.T, seed uint64) Config {
	faults := Chaos(500*time.Millisecond, time.Second).With(NetworkFaults...)
	faults.MaxDown = 500 * time.Millisecond
	return Config{
		Seed: seed, Duration: 40 * time.Second, Clients: 8, Keys: 8,
		Faults:     faults,
		OutDir:     outDir(t, "drill"),
		KeyPrefix:  fmt.Sprintf("ci-%d-", seed),
		TxlogLimit: 65536 + 64<<10, // --compact-bytes in startLocal, plus a batch
	}
}

func startLocal(t *testing.T) *launch.Cluster {
	t.Helper()
	dir := outDir(t, "cluster")
	// A small compaction threshold, so that a short drill compacts the
	// log under kill -9 too (ciConfig's TxlogLimit matches it).
	lc, err := launch.Start(context.Background(), launch.Config{Binary: binary, Dir: dir, PrepareTimeout: time.Second,
		ResolveAfter: time.Second, ResolveInterval: 200 * time.Millisecond, CoordinatorArgs: []string{"--compact-bytes", "65536"},
		NetworkFaults: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		lc.Close()
		if t.Failed() {
			t.Logf("process logs in %s", dir)
			for _, name := range append([]string{lc.Coordinator()}, lc.Participants()...) {
				t.Logf("--- %s log (last 3000 bytes):\n%s", name, lc.Tail(name, 3000))
			}
		}
	})
	return lc
}

// runDrill runs one drill against a fresh local cluster and fails the test
// on any violation, naming the seed and the files to look at. With bank
// accounts, it is the bank drill.
func runDrill(t *testing.T, seed uint64, bank int) {
	lc := startLocal(t)
	cfg := ciConfig(t, seed)
	cfg.Bank = bank
	cfg.CoordinatorHTTP, cfg.ParticipantHTTP = lc.ClientHTTP(), lc.PeerHTTP()
	res := drillOn(t, lc, cfg)
	if !res.Passed() {
		load := ""
		if bank > 0 {
			load = fmt.Sprintf(" --bank --accounts %d", bank)
		}
		t.Fatalf("seed %d: history %s, visualization %s; reproduce with: go run ./cmd/twopc drill --seed %d --duration %v --fault-every %v --max-down %v%s",
			seed, res.HistoryPath, res.VisualizationPath, seed, cfg.Duration, cfg.Faults.Every, cfg.Faults.MaxDown, load)
	}
	// A drill that injected nothing or did nothing proves nothing.
	for _, k := range cfg.Faults.Kinds {
		if res.Faults[k] == 0 {
			t.Errorf("no %s fault in %v: the drill did not attack", k, cfg.Duration)
		}
	}
	if res.OK == 0 || res.Unknown+res.Failed == 0 {
		t.Errorf("ok=%d failed=%d unknown=%d: want successes and casualties", res.OK, res.Failed, res.Unknown)
	}
	keys := make([]string, cfg.Keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("%sk%d", cfg.KeyPrefix, i)
	}
	if bank > 0 {
		if b := res.Bank; b == nil || b.TransfersOK == 0 || b.TransfersRetried == 0 || b.AuditsOK == 0 {
			t.Errorf("bank tally %v: want transfers, transfers that read again, audits", b)
		}
		// The quiet audits cut the history (they are every 5 s, and the
		// coordinator may be down at some of them).
		if res.Verdict.Segments < 2 {
			t.Errorf("the bank's history was checked in %d segments, want the quiet audits to cut it", res.Verdict.Segments)
		}
		keys = keys[:0]
		for i := range bank {
			keys = append(keys, fmt.Sprintf("%sacct%d", cfg.KeyPrefix, i))
		}
	}
	// A drill that passed leaves none of its keys behind.
	for _, key := range keys {
		_, err := rpc.NewClient(lc.CoordinatorURL(), lc.ClientHTTP()).Call(context.Background(), "get", key)
		if f := (*rpc.Fault)(nil); !errors.As(err, &f) || f.Code != rpc.NotFound {
			t.Errorf("get %q after the drill: %v, want fault %d (deleted)", key, err, rpc.NotFound)
		}
	}
}

// TestDrill is the bounded drill CI runs: a fixed seed, then a random one
// (logged, so that a failure can be replayed with it), then the bank.
func TestDrill(t *testing.T) {
	t.Run("seed=1", func(t *testing.T) { runDrill(t, 1, 0) })
	seed := rand.Uint64()
	t.Logf("random seed: %d", seed)
	t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runDrill(t, seed, 0) })
	t.Run("bank", func(t *testing.T) { runDrill(t, seed, 5) })
}

// tamperer wraps a local cluster and, once the cluster has settled after
// the load (the drill checks health while it waits for that), stops p2,
// changes one committed value in its database behind the protocol's back,
// and restarts it: one replica now holds a write no client made. It waits
// for the cluster to settle first because a transaction p2 still holds
// prepared would be committed on restart over the tampered value.
type tamperer struct {
	*launch.Cluster
	t    *testing.T
	done bool
}

func (c *tamperer) Healthy(ctx context.Context) error {
	if !c.done {
		c.done = true
		for (Probe{Cluster: c.Cluster, CoordinatorHTTP: c.ClientHTTP(), ParticipantHTTP: c.PeerHTTP()}).unsettled(ctx) != nil && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond) // poll, as Settle does
		}
		// A clean stop leaves every committed write in kv, and in the vote
		// log only what is prepared (nothing, settled): the tampered row
		// is p2's value when it reopens.
		if err := c.Process("p2").Terminate(10 * time.Second); err != nil {
			c.t.Fatal(err)
		}
		db, err := sql.Open("sqlite3", filepath.Join(c.Dir(), "p2.db"))
		if err != nil {
			c.t.Fatal(err)
		}
		_, err = db.Exec(`INSERT INTO kv(key, value, binary) VALUES ('t-k0', 'tampered', 0)
			ON CONFLICT(key) DO UPDATE SET value = 'tampered'`)
		db.Close()
		if err != nil {
			c.t.Fatal(err)
		}
		if err := c.Restart(ctx, "p2"); err != nil {
			c.t.Fatal(err)
		}
	}
	return c.Cluster.Healthy(ctx)
}

// The drill must fail when a replica diverges: the digests differ, and
// the final reads make the history non-linearizable on the tampered key.
func TestDrillCatchesADivergentReplica(t *testing.T) {
	lc := startLocal(t)
	cl := &tamperer{Cluster: lc, t: t}
	cfg := Config{Seed: 7, Duration: 3 * time.Second, Clients: 4, Keys: 4, KeyPrefix: "t-", OutDir: outDir(t, "tampered"),
		CoordinatorHTTP: lc.ClientHTTP(), ParticipantHTTP: lc.PeerHTTP()}
	res, err := Run(context.Background(), cl, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Summary())
	if res.Passed() {
		t.Fatal("the drill passed a cluster whose replica p2 was tampered with")
	}
	var replicas, lin bool
	for _, v := range res.Violations {
		replicas = replicas || strings.Contains(v, "replicas differ")
		lin = lin || strings.Contains(v, `linearizability`) && strings.Contains(v, `"t-k0"`)
	}
	if !replicas || !lin {
		t.Fatalf("want a replica violation and a linearizability violation on t-k0, got %q", res.Violations)
	}
	if _, err := os.Stat(res.VisualizationPath); err != nil {
		t.Fatalf("no visualization written: %v", err)
	}
	if !strings.Contains(res.Keys, `4 kept for study, under the prefix "t-"`) {
		t.Fatalf("keys: %q, want them kept for study after a failed drill", res.Keys)
	}
}

// Losing participants: each lost one is excluded, restarted empty, and
// must catch up and be active again; then the usual checks, digests
// included.
func TestDrillLosesParticipants(t *testing.T) {
	dir := outDir(t, "cluster")
	lc, err := launch.Start(context.Background(), launch.Config{Binary: binary, Dir: dir, PrepareTimeout: time.Second,
		ResolveAfter: time.Second, ResolveInterval: 200 * time.Millisecond, NetworkFaults: true,
		CoordinatorArgs: []string{"--exclude-after", "1s", "--compact-bytes", "65536"}})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	cfg := ciConfig(t, 11)
	cfg.Faults = cfg.Faults.With(LoseParticipant)
	cfg.CoordinatorHTTP, cfg.ParticipantHTTP = lc.ClientHTTP(), lc.PeerHTTP()
	res := drillOn(t, lc, cfg)
	if res.Faults[LoseParticipant] == 0 {
		t.Error("no participant lost")
	}
}

// Several coordinators: the leader killed, paused, cut off from the
// participants and from the other coordinators, a follower killed, a
// follower lost with its raft log and replaced by a new coordinator
// under a new name, beside the faults on participants and links; each
// fault on the leader must see another take over, and the usual checks,
// fencing's included, must pass with the group as it is at the end.
func TestDrillLeaderFaults(t *testing.T) {
	dir := outDir(t, "cluster")
	lc, err := launch.Start(context.Background(), launch.Config{Binary: binary, Dir: dir, Coordinators: 3, PrepareTimeout: time.Second,
		ResolveAfter: time.Second, ResolveInterval: 200 * time.Millisecond, NetworkFaults: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		lc.Close()
		if t.Failed() {
			t.Logf("process logs in %s", dir)
		}
	})
	cfg := ciConfig(t, 13)
	cfg.Duration = 30 * time.Second
	cfg.Faults = cfg.Faults.ForCoordinators(3)
	cfg.CoordinatorHTTP, cfg.ParticipantHTTP = lc.ClientHTTP(), lc.PeerHTTP()
	res := drillOn(t, lc, cfg)
	if !res.Passed() {
		t.Fatalf("history %s; reproduce with: go run ./cmd/twopc drill --coordinators 3 --seed %d --duration %v --fault-every %v --max-down %v",
			res.HistoryPath, cfg.Seed, cfg.Duration, cfg.Faults.Every, cfg.Faults.MaxDown)
	}
	for _, k := range append(slices.Clone(LeaderFaults), PartitionFaults...) {
		if res.Faults[k] == 0 {
			t.Errorf("no %s in %v: %v", k, cfg.Duration, res.Faults)
		}
	}
	if res.Takeovers == 0 || res.Terms == nil || res.Terms.Leader < 2 {
		t.Errorf("takeovers %d, terms %v: want new leaders", res.Takeovers, res.Terms)
	}
	checkLostFollowers(t, lc, res)
}

// checkLostFollowers checks a cluster after a drill that lost
// followers: the coordinators are three, none of the lost ones (c1-c3
// that are gone) and new ones in their place; the group says the same
// and names one leader; and a kill of the leader after a lose-follower
// still sees another take over (in the drill, else here).
func checkLostFollowers(t *testing.T, lc *launch.Cluster, res Result) {
	t.Helper()
	coords := lc.Coordinators()
	var added []string
	for _, c := range coords {
		if !slices.Contains([]string{"c1", "c2", "c3"}, c) {
			added = append(added, c)
		}
	}
	if len(coords) != 3 || len(added) != res.Faults[LoseFollower] {
		t.Fatalf("coordinators %v after %d lose-follower: want three, as many new", coords, res.Faults[LoseFollower])
	}
	p := Probe{Cluster: lc, CoordinatorHTTP: lc.ClientHTTP(), ParticipantHTTP: lc.PeerHTTP()}
	ctx := context.Background()
	group, err := p.group(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(group)
	if want := slices.Sorted(slices.Values(coords)); !slices.Equal(group, want) {
		t.Fatalf("coordinators.list %v, want %v", group, want)
	}
	// A leader paused until the load stopped may still be stepping down.
	st, err := p.waitOneLeader(ctx, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ReadHistory(res.HistoryPath)
	if err != nil {
		t.Fatal(err)
	}
	lostAt := slices.IndexFunc(h.Events, func(e Event) bool { return strings.HasPrefix(e.What, "lose follower ") })
	for _, e := range h.Events {
		if strings.HasPrefix(e.What, "lose follower ") || lostAt >= 0 && strings.HasPrefix(e.What, "kill leader ") {
			t.Log(e.What)
		}
	}
	if lostAt >= 0 && slices.ContainsFunc(h.Events[lostAt:], func(e Event) bool {
		return strings.HasPrefix(e.What, "kill leader ") && strings.Contains(e.What, "took over")
	}) {
		return
	}
	// No kill of the leader in the drill after the first lose-follower:
	// one here.
	if err := lc.Kill(ctx, st.Leader); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		leader, term, err := p.leader(ctx, st.Leader)
		if err == nil && leader != st.Leader && term > st.Term {
			t.Logf("after %s was killed, %s leads in term %d", st.Leader, leader, term)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no takeover 30s after %s was killed: %v %v", st.Leader, leader, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := lc.Restart(ctx, st.Leader); err != nil {
		t.Fatal(err)
	}
}

// drillOn runs the drill on lc, logs its summary and reports each
// violation; a drill that cannot run ends the test.
func drillOn(t *testing.T, lc *launch.Cluster, cfg Config) Result {
	t.Helper()
	res, err := Run(context.Background(), lc, cfg)
	t.Log(res.Summary())
	if err != nil {
		t.Fatalf("drill could not run: %v", err)
	}
	for _, v := range res.Violations {
		t.Errorf("violation: %s", v)
	}
	return res
}
