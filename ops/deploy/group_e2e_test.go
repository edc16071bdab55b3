package deploy

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twopc/twopc/consensus"
	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/peer"
)

// TestSeveralCoordinatorsOverSSH: three hosts, each a coordinator and a
// participant, deployed over real OpenSSH. Keys go in through a
// follower; the leader's coordinator is killed with SIGKILL over SSH
// (its supervisor too, so that nothing restarts it) and writes go on
// through the same follower, to the next leader. Every acknowledged put
// is then on every participant, and status shows the killed one
// stopped. The drill's Restart brings it back as a follower. The operator then moves the coordinator role from a
// follower to a new host h4 in the inventory: coordinator:add h4 and
// coordinator:remove of the follower change the group, and status shows
// it. A rerun of the add finds every step done, every config (which a
// deploy compares, to restart what changed) naming the group already.
func TestSeveralCoordinatorsOverSSH(t *testing.T) {
	e := newEnv(t)
	hosts := e.hostDocs()
	for i := 1; i < 3; i++ { // h2 and h3 coordinators too
		hosts[i]["roles"] = []string{RoleCoordinator, RoleParticipant}
		hosts[i]["coordinator_listen"] = fmt.Sprintf("%s:%d", hostIPs[i], freePort(t, hostIPs[i]))
	}
	e.doc["hosts"] = hosts
	e.writeInventory()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin := twopcBinary(t)
	start := time.Now()
	phase := func(what string) { t.Logf("%v: %s", time.Since(start).Round(100*time.Millisecond), what) }

	if err := e.ops.Deploy(ctx, "all", bin); err != nil {
		t.Fatalf("deploy: %v\n%s", err, e.output())
	}
	phase("deployed")
	if out := e.output(); strings.Count(out, "coordinator started pid") != 3 || !strings.Contains(out, "(one of h1, h2, h3)") {
		t.Errorf("deploy should start 3 coordinators, each one of h1, h2, h3")
	}
	if n := len(e.services()); n != 6 {
		t.Fatalf("want 6 processes (3 coordinators, 3 participants), got %d", n)
	}
	args := strings.Join(e.inv.args(e.inv.Hosts[1], RoleParticipant, e.ops.members), " ")
	if !strings.Contains(args, "--coordinator "+e.inv.Hosts[0].URL(RoleCoordinator)+","+e.inv.Hosts[1].URL(RoleCoordinator)+","+e.inv.Hosts[2].URL(RoleCoordinator)+" ") {
		t.Errorf("a participant's args lack every coordinator: %s", args)
	}

	leader, follower := e.roles(ctx)
	url := func(name string) string { h, _ := e.inv.host(name); return h.URL(RoleCoordinator) }
	load := startLoad(t, e.client(url(follower), ""), 2, rpc.OutcomeUnknown)
	load.WaitAcks(100)

	cl, err := OpenCluster(ctx, e.inv)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Kill(ctx, RoleCoordinator+"-"+leader); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the leader %s; the load goes on through %s", leader, follower)
	load.WaitAcks(200) // through the next leader
	acked := load.End()
	phase("writes went on through the next leader")
	e.settle(ctx, "h1", "h2", "h3")
	e.checkOnEveryParticipant(ctx, acked, "h1", "h2", "h3")
	log, err := cl.ReadTxlog(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if sc, err := consensus.ScanBytes("copy", log); err != nil || len(sc.All.Pending) != 0 || sc.All.Epoch < 2 {
		t.Errorf("the raft log read over SSH: %v, %+v", err, sc)
	}

	err = e.ops.Status(ctx)
	if out := e.output(); err == nil || !regexp.MustCompile(`(?m)^`+leader+` +coordinator +stopped`).MatchString(out) {
		t.Errorf("status with %s's coordinator killed should fail, showing it inactive: %v", leader, err)
	}
	if err := cl.Restart(ctx, RoleCoordinator+"-"+leader); err != nil {
		t.Fatal(err)
	}
	phase("started again")
	newLeader, _ := e.roles(ctx)
	var gone string // a follower, whose coordinator role moves to h4
	for _, h := range []string{"h1", "h2", "h3"} {
		if h != newLeader {
			gone = h
			break
		}
	}

	// The operator moves the role from gone to the new host h4.
	hosts = e.hostDocs()
	i := slices.IndexFunc(hosts, func(h map[string]any) bool { return h["name"] == gone })
	hosts[i]["roles"] = []string{RoleParticipant}
	delete(hosts[i], "coordinator_listen")
	e.doc["hosts"] = hosts
	e.addHost("127.0.0.5", "h4", RoleCoordinator)

	if err := e.ops.AddCoordinator(ctx, "h4", bin, 0); err != nil {
		t.Fatalf("coordinator:add h4: %v\n%s", err, e.output())
	}
	out := e.output()
	for _, want := range []string{
		"add coordinator h4: the group is h1, h2, h3; h4 (127.0.0.5) will serve at http://127.0.0.5:",
		"== step 1/5: deploy h4 with --join", "ok    h4 ", "coordinator started pid",
		"== step 2/5: add h4 to the group", "coordinators.add h4 http://127.0.0.5:",
		"== step 3/5: wait until h4 is a member that answers", "h4 is a member, and answers: leader " + newLeader,
		"== step 4/5: rewrite the configs", "for their next start (no restart needed",
		"== step 5/5: check", "coordinators: h1 ", "add coordinator h4: done.",
		"The group has " + gone + ", without the coordinator role in " + e.invPath + ": remove it (mage coordinator:remove)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("coordinator:add's output lacks %q", want)
		}
	}
	phase("added h4")
	if err := e.ops.RemoveCoordinator(ctx, gone); err != nil {
		t.Fatalf("coordinator:remove %s: %v\n%s", gone, err, e.output())
	}
	out = e.output()
	for _, want := range []string{
		"== step 1/4: remove " + gone + " from the group", "coordinators.remove " + gone + ": removed for good",
		"== step 2/4: stop " + gone + "'s coordinator", gone + "'s coordinator stopped",
		"== step 4/4: check", "remove coordinator " + gone + ": done.", e.invPath + " names the group's 3 coordinators: nothing to edit.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("coordinator:remove's output lacks %q", want)
		}
	}
	phase("removed " + gone)
	// A rerun finds the steps done.
	if err := e.ops.AddCoordinator(ctx, "h4", bin, 0); err != nil {
		t.Fatalf("coordinator:add h4 again: %v\n%s", err, e.output())
	}
	if out := e.output(); !strings.Contains(out, "h4 is a member of the group") || !strings.Contains(out, "h4 is a member already: not added again") ||
		!strings.Contains(out, "every config names the group already") {
		t.Errorf("coordinator:add h4 again should resume, with every step done")
	}

	if err := e.ops.Status(ctx); err != nil {
		t.Errorf("status: %v\n%s", err, e.output())
	}
	out = e.output()
	group := regexp.MustCompile(`(?m)^coordinators: (.*)$`).FindStringSubmatch(out)
	if group == nil || strings.Contains(group[1], gone) || strings.Count(group[1], " leader") != 1 || strings.Count(group[1], " follower") != 2 ||
		!strings.Contains(group[1], "h4 ") || !strings.Contains(out, "3/3 participants active") {
		t.Errorf("status should show the group without %s, with h4, one leader and two followers", gone)
	}
	if _, err := e.client(url("h4"), "").Call(ctx, "put", "through", "h4"); err != nil {
		t.Errorf("put through h4: %v", err)
	}
	phase("status")
}

// roles asks the group, through h1's public URL, which coordinator
// leads (waiting, bounded, for one to), and returns it and a follower.
func (e *testEnv) roles(ctx context.Context) (leader, follower string) {
	t := e.t
	t.Helper()
	c := e.client(e.inv.Hosts[0].URL(RoleCoordinator), "")
	for deadline := time.Now().Add(time.Minute); ; {
		res, err := c.Call(ctx, "coordinators.list")
		list, _ := res.([]any)
		for _, m := range list {
			m, _ := m.(map[string]any)
			if m["leader"] == true {
				leader, _ = m["name"].(string)
			} else if follower == "" {
				follower, _ = m["name"].(string)
			}
		}
		if leader != "" && follower != "" {
			return leader, follower
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader a minute after the start: %v, %v", res, err)
		}
		leader, follower = "", ""
		time.Sleep(100 * time.Millisecond) // poll interval
	}
}

// settle waits, bounded, until the named participants hold nothing
// prepared and equal digests: a killed leader's transactions are
// finished by the next one.
func (e *testEnv) settle(ctx context.Context, names ...string) {
	t := e.t
	t.Helper()
	token, err := e.inv.PeerToken(false)
	if err != nil {
		t.Fatal(err)
	}
	var last string
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var ds []string
		for _, name := range names {
			h, _ := e.inv.host(name)
			d, err := peer.NewClient(h.URL(RoleParticipant), e.httpClient(token), 0).Digest(ctx)
			if err != nil {
				ds = append(ds, err.Error())
				continue
			}
			ds = append(ds, fmt.Sprintf("%d keys, hash %s, %d prepared", d.Keys, d.Hash, d.Prepared))
		}
		last = strings.Join(ds, "; ")
		if !strings.Contains(last, "error") && len(slices.Compact(slices.Clone(ds))) == 1 && strings.HasSuffix(ds[0], " 0 prepared") {
			return
		}
	}
	t.Fatalf("participants not settled after 2 minutes: %s", last)
}
