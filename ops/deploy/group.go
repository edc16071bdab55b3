package deploy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twopc/twopc/internal/rpc"
)

// Several coordinators. The inventory says where the coordinator hosts
// are and what the group should be (1, 3 or 5 hosts with the role); the
// group itself says who its members are, once it has started: raft's
// membership lives in the coordinators' logs, and changes only through
// coordinators.add and coordinators.remove (AddCoordinator,
// RemoveCoordinator: coordgroup.go). So, as for the participants
// (members.go), the deploy reads the group first and:
//
//   - gives each coordinator --name (its host's name) and --coordinators
//     the group's members, and each participant every member's URL in
//     --coordinator;
//   - starts a coordinator only on a host that is a member and has its
//     log: one with the role that is not a member (yet, or any more: a
//     removed name never comes back) is not started, and a member whose
//     log is gone is refused, because a coordinator that lost its disk
//     must not come back under its name (it would have forgotten its
//     votes): it is removed, and the host comes back under a new name;
//   - leaves running a member whose host lost the role in the inventory,
//     until it is removed: stopping it would take a member away behind
//     the group's back.
//
// A new group (no coordinator host has a log) is the inventory's
// coordinator hosts. Every list is sorted by name, as coordinators.list
// gives it, so that reading it from the group or from a config file
// never changes a config by its order alone.

// groupMember is one coordinator of the group.
type groupMember struct {
	Name, URL string
	Leader    bool // as coordinators.list says; false when read from a config
}

// coordGroup is what the coordinator hosts say about the group.
type coordGroup struct {
	started bool            // some coordinator host has a raft log: the group exists
	members []groupMember   // nil: not read (the inventory's coordinators)
	joining map[string]bool // started with --join: added to a group that existed
	hasLog  map[string]bool // which hosts have their log
}

func (g coordGroup) member(name string) bool {
	return slices.ContainsFunc(g.members, func(m groupMember) bool { return m.Name == name })
}

// groupOf is the group m says, or a new group of the inventory's
// coordinator hosts.
func (inv *Inventory) groupOf(m membership) []groupMember {
	if m.group.members != nil {
		return m.group.members
	}
	var out []groupMember
	for _, h := range inv.Coordinators() {
		out = append(out, groupMember{Name: h.Name, URL: h.URL(RoleCoordinator)})
	}
	slices.SortFunc(out, func(a, b groupMember) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// groupFlag is the coordinators' --coordinators value.
func (inv *Inventory) groupFlag(m membership) string {
	var parts []string
	for _, g := range inv.groupOf(m) {
		parts = append(parts, g.Name+"="+g.URL)
	}
	return strings.Join(parts, ",")
}

// coordinatorURLs is a participant's --coordinator: every coordinator's URL.
func (inv *Inventory) coordinatorURLs(m membership) string {
	if !inv.Several() {
		return inv.Coordinator().URL(RoleCoordinator)
	}
	var urls []string
	for _, g := range inv.groupOf(m) {
		urls = append(urls, g.URL)
	}
	return strings.Join(urls, ",")
}

// coordinatorOff says why deploy does not run a coordinator on h, which
// has the role, or "" if it does. A member whose log is gone is an
// error, never a start.
func (m membership) coordinatorOff(inv *Inventory, h Host) (string, error) {
	g := m.group
	switch {
	case !inv.Several() || !g.started:
		return "", nil
	case !g.member(h.Name):
		return fmt.Sprintf("%s is not in the coordinator group: mage coordinator:add %s adds it; a removed name never comes back", h.Name, h.Name), nil
	case !g.hasLog[h.Name] && !g.joining[h.Name]:
		return "", fmt.Errorf("%s is in the coordinator group, but its raft log (%s) is gone: a coordinator that lost its disk must not come back under its name "+
			"(it forgot its votes); remove it (mage coordinator:remove %s) and bring the host back under a new name (mage coordinator:add)", h.Name, txlogPath(h), h.Name)
	}
	return "", nil
}

// listTimeout bounds one coordinators.list call.
const listTimeout = 5 * time.Second

// listGroup asks the coordinator on c's host, through the SSH
// connection, who the group's members are (any coordinator answers: a
// follower forwards to the leader).
func (c *Conn) listGroup(ctx context.Context, ct *clusterTLS, clientToken string) ([]groupMember, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	res, err := rpc.NewClient(c.Host.LocalURL(RoleCoordinator), c.roleClient(RoleCoordinator, ct, clientToken)).Call(ctx, "coordinators.list")
	if err != nil {
		return nil, fmt.Errorf("coordinators.list on %s: %w", c.Host.Name, err)
	}
	list, _ := res.([]any)
	out := []groupMember{}
	for _, e := range list {
		m, _ := e.(map[string]any)
		name, _ := m["name"].(string)
		url, _ := m["url"].(string)
		leader, _ := m["leader"].(bool)
		if name == "" || url == "" {
			return nil, fmt.Errorf("coordinators.list on %s: unexpected entry %v", c.Host.Name, e)
		}
		out = append(out, groupMember{Name: name, URL: url, Leader: leader})
	}
	slices.SortFunc(out, func(a, b groupMember) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// leaderOf is the member that leads, "" if none does.
func leaderOf(members []groupMember) string {
	for _, m := range members {
		if m.Leader {
			return m.Name
		}
	}
	return ""
}

func memberNames(members []groupMember) string {
	var out []string
	for _, m := range members {
		out = append(out, m.Name)
	}
	return strings.Join(out, ", ")
}

// groupArg returns the members in the --coordinators of an args file.
func groupArg(args []byte) []groupMember {
	lines := strings.Split(string(args), "\n")
	i := slices.Index(lines, "--coordinators")
	if i < 0 || i+1 >= len(lines) {
		return nil
	}
	var out []groupMember
	for _, p := range strings.Split(lines[i+1], ",") {
		name, url, _ := strings.Cut(p, "=")
		out = append(out, groupMember{Name: name, URL: url})
	}
	slices.SortFunc(out, func(a, b groupMember) int { return strings.Compare(a.Name, b.Name) })
	return out
}
