package deploy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/twopc/twopc/txlog"
)

// threeCoordinators is an inventory whose hosts a, b and c each run a
// coordinator and a participant, and d a participant.
func threeCoordinators(t *testing.T) *Inventory {
	t.Helper()
	var hosts []any
	for i, name := range []string{"a", "b", "c", "d"} {
		ip := "10.0.0." + string(rune('1'+i))
		h := map[string]any{"name": name, "address": ip, "roles": []string{"participant"}, "participant_listen": ip + ":7401"}
		if name != "d" {
			h["roles"] = []string{"coordinator", "participant"}
			h["coordinator_listen"] = ip + ":7400"
		}
		hosts = append(hosts, h)
	}
	data, _ := json.Marshal(map[string]any{"defaults": map[string]any{"user": "u", "key": "/k", "dir": "/srv/twopc"}, "hosts": hosts})
	inv, err := ParseInventory(data, "/")
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// TestSeveralCoordinatorsArgs: with 3 coordinator hosts, each
// coordinator gets --name and the group, each participant every
// coordinator's URL; once the group has started, it (not the
// inventory) says who the members are, and a host with the role that is
// not a member does not run a coordinator.
func TestSeveralCoordinatorsArgs(t *testing.T) {
	inv := threeCoordinators(t)
	if !inv.Several() || len(inv.Coordinators()) != 3 {
		t.Fatalf("coordinators %v", inv.Coordinators())
	}
	group := "a=http://10.0.0.1:7400/RPC2,b=http://10.0.0.2:7400/RPC2,c=http://10.0.0.3:7400/RPC2"
	args := strings.Join(inv.args(inv.Hosts[1], RoleCoordinator, membership{}), " ")
	if !strings.Contains(args, " --name b --coordinators "+group) || strings.Contains(args, "--join") {
		t.Errorf("coordinator args %s", args)
	}
	args = strings.Join(inv.args(inv.Hosts[3], RoleParticipant, membership{}), " ")
	if !strings.Contains(args, " --coordinator http://10.0.0.1:7400/RPC2,http://10.0.0.2:7400/RPC2,http://10.0.0.3:7400/RPC2 ") {
		t.Errorf("participant args %s", args)
	}

	// The group, once started: c was removed and e added (e's host is
	// not in this inventory); a joined the group later than the others.
	m := membership{group: coordGroup{started: true,
		members: []groupMember{{Name: "a", URL: "http://10.0.0.1:7400/RPC2"}, {Name: "b", URL: "http://10.0.0.2:7400/RPC2"}, {Name: "e", URL: "http://10.0.0.5:7400/RPC2"}},
		joining: map[string]bool{"a": true}, hasLog: map[string]bool{"a": true, "c": true}}}
	args = strings.Join(inv.args(inv.Hosts[0], RoleCoordinator, m), " ")
	if !strings.Contains(args, " --name a --coordinators a=http://10.0.0.1:7400/RPC2,b=http://10.0.0.2:7400/RPC2,e=http://10.0.0.5:7400/RPC2 --join") {
		t.Errorf("coordinator args from the group %s", args)
	}
	if why, err := m.coordinatorOff(inv, inv.Hosts[0]); why != "" || err != nil {
		t.Errorf("a is a member with its log: %q, %v", why, err)
	}
	if why, err := m.coordinatorOff(inv, inv.Hosts[2]); err != nil || !strings.Contains(why, "c is not in the coordinator group") {
		t.Errorf("c was removed: %q, %v", why, err)
	}
	if _, err := m.coordinatorOff(inv, inv.Hosts[1]); err == nil || !strings.Contains(err.Error(), "lost its disk must not come back under its name") {
		t.Errorf("b is a member without its log: %v", err)
	}
	if got := groupArg(argsFile(inv.args(inv.Hosts[0], RoleCoordinator, m))); memberNames(got) != "a, b, e" {
		t.Errorf("groupArg reads back %v", got)
	}
}

// TestMembershipFromCoordinatorHosts: what the coordinator hosts hold
// makes one membership. The participants' comes from the copy of the
// log that knows the most; the group's from the first coordinator that
// answered, else a config; a host holding the wrong kind of log, or no
// host able to say whether the group exists, is refused.
func TestMembershipFromCoordinatorHosts(t *testing.T) {
	inv := threeCoordinators(t)
	a, b, c := inv.Hosts[0], inv.Hosts[1], inv.Hosts[2]
	st := func(removed ...string) *txlog.State { return &txlog.State{Epoch: 3, Removed: removed} }
	list := []groupMember{{Name: "a", URL: "http://10.0.0.1:7400/RPC2", Leader: true}, {Name: "b", URL: "http://10.0.0.2:7400/RPC2"}}
	args := argsFile(inv.args(c, RoleCoordinator, membership{}))
	args = append(args, "--join\n"...)

	m, err := inv.membershipFrom([]coordHost{
		{host: a, log: &logCopy{raft: true, last: 10, st: st()}, listErr: errors.New("no leader")},
		{host: b, log: &logCopy{raft: true, last: 12, st: st("d")}, list: list},
		{host: c, args: args, listErr: errors.New("not a member")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !m.removed["d"] || !m.group.started || memberNames(m.group.members) != "a, b" || !m.group.joining["c"] || m.group.hasLog["c"] {
		t.Errorf("membership %+v", m)
	}
	// No coordinator answers: the group is the installed config's.
	m, err = inv.membershipFrom([]coordHost{
		{host: a, log: &logCopy{raft: true, st: st()}, listErr: errors.New("down")},
		{host: c, args: args, listErr: errors.New("down")},
	})
	if err != nil || memberNames(m.group.members) != "a, b, c" {
		t.Errorf("membership from the config: %v, %+v", err, m.group)
	}
	for _, tc := range []struct {
		reads []coordHost
		want  string
	}{
		{[]coordHost{{host: a, log: &logCopy{st: st()}}}, "a holds a single coordinator's txlog"},
		{[]coordHost{{host: a, err: errors.New("ssh: down")}, {host: b}}, "cannot read a (ssh: down)"},
		{[]coordHost{{host: a, log: &logCopy{raft: true, st: st()}, listErr: errors.New("no leader")}}, "no coordinator says who its members are"},
	} {
		if _, err := inv.membershipFrom(tc.reads); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("membershipFrom: %v, want %q", err, tc.want)
		}
	}
}
