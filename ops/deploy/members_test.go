package deploy

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestParticipantsFlagFollowsTheLog: the coordinator's --participants
// is the inventory's participants that its host's membership admits. A
// new cluster takes them all; once the coordinator has a log, a removed
// one stays out although the inventory still lists it, and a new one
// comes in only once it was added (joined), never by a redeploy.
func TestParticipantsFlagFollowsTheLog(t *testing.T) {
	doc := map[string]any{
		"defaults":      map[string]any{"user": "u", "key": "/k", "dir": "/srv/twopc"},
		"exclude_after": "5s",
		"hosts": []any{
			map[string]any{"name": "a", "address": "10.0.0.1", "roles": []string{"coordinator", "participant"},
				"coordinator_listen": "10.0.0.1:7400", "participant_listen": "10.0.0.1:7401"},
			map[string]any{"name": "b", "address": "10.0.0.2", "roles": []string{"participant"}, "participant_listen": "10.0.0.2:7401"},
			map[string]any{"name": "old", "address": "10.0.0.3", "roles": []string{"participant"}, "participant_listen": "10.0.0.3:7401"},
			map[string]any{"name": "new", "address": "10.0.0.4", "roles": []string{"participant"}, "participant_listen": "10.0.0.4:7401"},
		},
	}
	data, _ := json.Marshal(doc)
	inv, err := ParseInventory(data, "/")
	if err != nil {
		t.Fatal(err)
	}
	set := func(names ...string) map[string]bool {
		m := map[string]bool{}
		for _, n := range names {
			m[n] = true
		}
		return m
	}
	for _, tc := range []struct {
		name string
		m    membership
		want string // the names in --participants
	}{
		{"a new cluster", membership{}, "a,b,old,new"},
		{"running, new not added yet", membership{started: true, configured: set("a", "b", "old")}, "a,b,old"},
		{"new added, catching up", membership{started: true, configured: set("a", "b", "old"), joined: set("new")}, "a,b,old,new"},
		{"old replaced by new", membership{started: true, configured: set("a", "b", "old"), joined: set("new"), removed: set("old")}, "a,b,new"},
		{"no args file: the inventory, less the removed", membership{started: true, removed: set("old")}, "a,b,new"},
	} {
		var names []string
		for _, p := range strings.Split(inv.participantsFlag(tc.m), ",") {
			n, _, _ := strings.Cut(p, "=")
			names = append(names, n)
		}
		if got := strings.Join(names, ","); got != tc.want {
			t.Errorf("%s: --participants %s, want %s", tc.name, got, tc.want)
		}
	}
	args := strings.Join(inv.args(inv.Hosts[0], RoleCoordinator, membership{}), " ")
	if !strings.Contains(args, " --exclude-after 5s") {
		t.Errorf("exclude_after not passed on: %s", args)
	}
}
