package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twopc/twopc/api"
	"github.com/twopc/twopc/internal/rpc"
)

// Adding and removing coordinators (mage coordinator:add, :remove and
// :replace), one change at a time, each step checked and skipped with a
// word when a rerun finds it done.
//
// The inventory is edited first, to say what the group should be: the
// new host gets the coordinator role (and coordinator_listen), and a host
// leaving the group loses it, in the same edit when one replaces the
// other, so that the inventory always names 1, 3 or 5 coordinator hosts.
// The deploy follows the group, not the inventory, for who the members
// are (group.go): between the edit and the change, a deploy neither
// starts the new host's coordinator nor stops the old one's.
//
// AddCoordinator:
//
//  1. the new host is deployed with --join and --coordinators naming the
//     group and itself: with its empty log it waits for the leader;
//  2. coordinators.add (through any coordinator): the leader sends it
//     the log (a snapshot);
//  3. wait until coordinators.list names it and its own endpoint
//     answers status (forwarded to the leader it has heard from);
//  4. every coordinator's and participant's config is rewritten to name
//     the group, without a restart (the running processes know the
//     group from the log; the config is for their next start).
//
// RemoveCoordinator:
//
//  1. refused while the coordinator leads: stop it first (another takes
//     over within a second), then run it again;
//  2. coordinators.remove (through another coordinator);
//  3. its coordinator is stopped if its host answers (a dead host is
//     fine: deploy never starts a removed coordinator again);
//  4. the configs, as for an add.
//
// ReplaceCoordinator removes the old one first, then adds the new one:
// when the old one is dead, a group that first grew to 4 would need 3 of
// the 4, the new one among them, before it has caught up.

// DefaultCoordinatorWait bounds step 3 of an add: the snapshot of a
// coordinator's log is small (finished transactions are compacted away).
const DefaultCoordinatorWait = 2 * time.Minute

// groupConn is a connection to a coordinator that answers for the group.
type groupConn struct {
	conn   *Conn
	list   *rpc.Client // the client token: coordinators.list
	change *rpc.Client // the peer token: coordinators.add and .remove
}

// members asks the group who its members are.
func (g *groupConn) members(ctx context.Context, o *Ops) ([]groupMember, error) {
	return g.conn.listGroup(ctx, o.tls, o.clientToken)
}

// openGroup connects to the first coordinator host of the inventory,
// other than avoid, whose coordinator says who the group's members are.
func (o *Ops) openGroup(ctx context.Context, avoid string) (*groupConn, []groupMember, error) {
	var errs []error
	for _, h := range o.Inv.Coordinators() {
		if h.Name == avoid {
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, dialTimeout+handshakeTimeout)
		c, err := Dial(dctx, h, o.Inv.KnownHosts)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		list, err := c.listGroup(ctx, o.tls, o.clientToken)
		if err != nil {
			c.Close()
			errs = append(errs, err)
			continue
		}
		return &groupConn{conn: c,
			list:   rpc.NewClient(h.LocalURL(RoleCoordinator), c.roleClient(RoleCoordinator, o.tls, o.clientToken)),
			change: rpc.NewClient(h.LocalURL(RoleCoordinator), c.roleClient(RoleCoordinator, o.tls, o.token)),
		}, list, nil
	}
	return nil, nil, fmt.Errorf("no coordinator says who the group's members are: %w", errors.Join(errs...))
}

// step is one checked step of a change.
type step struct {
	name string
	run  func(context.Context) (string, error)
}

// runSteps prints and runs steps in order; the error names the failed one.
func (o *Ops) runSteps(ctx context.Context, what string, steps []step) error {
	for i, s := range steps {
		fmt.Fprintf(o.Out, "== step %d/%d: %s\n", i+1, len(steps), s.name)
		msg, err := s.run(ctx)
		if err != nil {
			return fmt.Errorf("%s: step %d/%d (%s): %w", what, i+1, len(steps), s.name, err)
		}
		fmt.Fprintf(o.Out, "   %s\n", strings.ReplaceAll(msg, "\n", "\n   "))
	}
	return nil
}

// checkGroupChange checks what every change needs before anything is
// changed: a group, and the credentials.
func (o *Ops) checkGroupChange() error {
	if !o.Inv.Several() {
		return fmt.Errorf("%w: the inventory gives the coordinator role to one host: a single coordinator does not become a group in place", ErrInventory)
	}
	return o.loadCredentials(false)
}

// AddCoordinator adds the inventory's host name, which must have the
// coordinator role, to the group of coordinators (see above).
func (o *Ops) AddCoordinator(ctx context.Context, name, binary string, wait time.Duration) error {
	if wait <= 0 {
		wait = DefaultCoordinatorWait
	}
	what := "add coordinator " + name
	h, ok := o.Inv.host(name)
	switch {
	case !ok:
		return fmt.Errorf("%s: nothing changed: %w: %s is not in the inventory: add the host, with the coordinator role and coordinator_listen, first", what, ErrInventory, name)
	case !h.Has(RoleCoordinator):
		return fmt.Errorf("%s: nothing changed: %w: give %s the coordinator role and coordinator_listen in the inventory first "+
			"(and take the role off the host it replaces, if the group keeps its size: mage coordinator:replace OLD %s)", what, ErrInventory, name, name)
	}
	if err := o.checkGroupChange(); err != nil {
		return fmt.Errorf("%s: nothing changed: %w", what, err)
	}
	g, list, err := o.openGroup(ctx, name)
	if err != nil {
		return fmt.Errorf("%s: nothing changed: %w", what, err)
	}
	defer g.conn.Close()
	url := h.URL(RoleCoordinator)
	if i := slices.IndexFunc(list, func(m groupMember) bool { return m.Name == name }); i >= 0 {
		if list[i].URL != url {
			return fmt.Errorf("%s: nothing changed: %s is a member already, at %s, and the inventory puts it at %s", what, name, list[i].URL, url)
		}
		fmt.Fprintf(o.Out, "%s: %s is a member of the group (%s) already: resuming\n", what, name, memberNames(list))
	} else {
		fmt.Fprintf(o.Out, "%s: the group is %s; %s (%s) will serve at %s\n", what, memberNames(list), name, h.Address, url)
	}
	err = o.runSteps(ctx, what, []step{
		{"deploy " + name + " with --join", func(ctx context.Context) (string, error) { return o.deployJoining(ctx, h, binary) }},
		{"add " + name + " to the group", func(ctx context.Context) (string, error) { return g.add(ctx, o, name, url) }},
		{fmt.Sprintf("wait until %s is a member that answers (at most %v)", name, wait), func(ctx context.Context) (string, error) {
			return o.waitMember(ctx, g, h, wait)
		}},
		{"rewrite the configs", o.reconfigureGroup},
		{"check", func(ctx context.Context) (string, error) { return o.checkGroup(ctx, g, name, "") }},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "%s: done.\n%s\n", what, o.groupAdvice(ctx, g))
	return nil
}

// deployJoining deploys h as Deploy does, its coordinator started with
// --join and the group (and itself) in --coordinators.
func (o *Ops) deployJoining(ctx context.Context, h Host, binary string) (string, error) {
	bin, err := readBinary(binary)
	if err != nil {
		return "", err
	}
	if err := o.readMembership(ctx); err != nil {
		return "", err
	}
	g := &o.members.group
	if !g.member(h.Name) {
		if g.hasLog[h.Name] {
			return "", fmt.Errorf("%s has a raft log (%s) but is not a member: it was removed, and a removed name never comes back; bring the host back under a new name", h.Name, txlogPath(h))
		}
		g.members = append(slices.Clone(g.members), groupMember{Name: h.Name, URL: h.URL(RoleCoordinator)})
		slices.SortFunc(g.members, func(a, b groupMember) int { return strings.Compare(a.Name, b.Name) })
		g.joining[h.Name] = true
	}
	if err := o.each(ctx, "deploy", []Host{h}, func(ctx context.Context, c *Conn) (string, error) {
		return o.deployHost(ctx, c, bin)
	}); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s's coordinator serves at %s, with --coordinators %s", h.Name, h.URL(RoleCoordinator), o.Inv.groupFlag(o.members)), nil
}

func (g *groupConn) add(ctx context.Context, o *Ops, name, url string) (string, error) {
	list, err := g.members(ctx, o)
	if err != nil {
		return "", err
	}
	if slices.ContainsFunc(list, func(m groupMember) bool { return m.Name == name }) {
		return fmt.Sprintf("%s is a member already: not added again", name), nil
	}
	cctx, cancel := context.WithTimeout(ctx, memberCallTimeout)
	defer cancel()
	if _, err := g.change.Call(cctx, "coordinators.add", name, url); err != nil {
		return "", fmt.Errorf("coordinators.add %s %s: %w", name, url, err)
	}
	return fmt.Sprintf("coordinators.add %s %s: added; the leader sends it the log", name, url), nil
}

// waitMember waits until the group lists h and h's own coordinator
// answers status: it has heard from the leader.
func (o *Ops) waitMember(ctx context.Context, g *groupConn, h Host, wait time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	c, err := Dial(ctx, h, o.Inv.KnownHosts)
	if err != nil {
		return "", err
	}
	defer c.Close()
	own := api.NewClient(h.LocalURL(RoleCoordinator), c.roleClient(RoleCoordinator, o.tls, o.clientToken))
	start := time.Now()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		why := ""
		list, err := g.members(ctx, o)
		switch {
		case err != nil:
			why = err.Error()
		case !slices.ContainsFunc(list, func(m groupMember) bool { return m.Name == h.Name }):
			why = fmt.Sprintf("coordinators.list names %s only", memberNames(list))
		default:
			sctx, scancel := context.WithTimeout(ctx, listTimeout)
			st, err := own.Status(sctx)
			scancel()
			if err == nil {
				return fmt.Sprintf("%s is a member, and answers: leader %s, term %d, after %v", h.Name, st.Leader, st.Term, time.Since(start).Round(100*time.Millisecond)), nil
			}
			why = fmt.Sprintf("%s does not answer status yet: %v", h.Name, err)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%s (after %v; mage logs %s/coordinator; run this command again to wait again)", why, wait, h.Name)
		case <-tick.C:
		}
	}
}

// reconfigureGroup rewrites, without a restart, the config of every
// coordinator deploy runs and of every participant, to name the group as
// it is now. A host that does not answer is said, and gets its config
// at its next deploy.
func (o *Ops) reconfigureGroup(ctx context.Context) (string, error) {
	if err := o.readMembership(ctx); err != nil {
		return "", err
	}
	var notes, changed, unreachable []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range o.Inv.Hosts {
		roles, err := o.deployedRoles(h)
		if err != nil {
			notes = append(notes, err.Error())
			continue
		}
		wg.Go(func() {
			ch, err := o.reconfigureHost(ctx, h, roles)
			mu.Lock()
			defer mu.Unlock()
			for _, r := range ch {
				changed = append(changed, h.Name+"/"+r)
			}
			if err != nil {
				unreachable = append(unreachable, fmt.Sprintf("%s (%v)", h.Name, err))
			}
		})
	}
	wg.Wait()
	slices.Sort(changed)
	slices.Sort(unreachable)
	msg := "every config names the group already: " + o.Inv.groupFlag(o.members)
	if len(changed) > 0 {
		msg = fmt.Sprintf("--coordinators %s\nnow in the config of %s, for their next start (no restart needed: the running processes have it from the log)",
			o.Inv.groupFlag(o.members), strings.Join(changed, ", "))
	}
	if len(unreachable) > 0 {
		msg += "\nnot rewritten, for now (the next deploy does it, and restarts them): " + strings.Join(unreachable, "; ")
	}
	if len(notes) > 0 {
		msg += "\n" + strings.Join(notes, "\n")
	}
	return msg, nil
}

// checkGroup checks that the group lists in and not out, and has a leader.
func (o *Ops) checkGroup(ctx context.Context, g *groupConn, in, out string) (string, error) {
	list, err := g.members(ctx, o)
	if err != nil {
		return "", err
	}
	var bad []string
	if in != "" && !slices.ContainsFunc(list, func(m groupMember) bool { return m.Name == in }) {
		bad = append(bad, in+" is not a member")
	}
	if out != "" && slices.ContainsFunc(list, func(m groupMember) bool { return m.Name == out }) {
		bad = append(bad, out+" is still a member")
	}
	if leaderOf(list) == "" {
		bad = append(bad, "no leader")
	}
	if len(bad) > 0 {
		return "", fmt.Errorf("%s (%s)", strings.Join(bad, "; "), groupSummary(list, true, nil, nil))
	}
	return groupSummary(list, true, nil, nil), nil
}

// groupAdvice says what the inventory should change for the group it
// has now: the hosts to give the role to, or take it from.
func (o *Ops) groupAdvice(ctx context.Context, g *groupConn) string {
	list, err := g.members(ctx, o)
	if err != nil {
		return ""
	}
	file := o.Inv.path
	if file == "" {
		file = "the inventory"
	}
	var give, take []string
	for _, m := range list {
		if h, ok := o.Inv.host(m.Name); !ok || !h.Has(RoleCoordinator) {
			give = append(give, m.Name)
		}
	}
	for _, h := range o.Inv.Coordinators() {
		if !slices.ContainsFunc(list, func(m groupMember) bool { return m.Name == h.Name }) {
			take = append(take, h.Name)
		}
	}
	var out []string
	if len(take) > 0 {
		out = append(out, fmt.Sprintf("The inventory gives the coordinator role to %s, not in the group: add it (mage coordinator:add), "+
			"or take the role off it in %s; until then a deploy does not start its coordinator.", strings.Join(take, ", "), file))
	}
	if len(give) > 0 {
		out = append(out, fmt.Sprintf("The group has %s, without the coordinator role in %s: remove it (mage coordinator:remove), "+
			"or give it the role; until then a deploy leaves it as it is.", strings.Join(give, ", "), file))
	}
	if len(out) == 0 {
		return fmt.Sprintf("%s names the group's %d coordinators: nothing to edit.", file, len(list))
	}
	return strings.Join(out, "\n")
}

// RemoveCoordinator takes the coordinator name (a host name) out of the
// group for good and stops it (see above).
func (o *Ops) RemoveCoordinator(ctx context.Context, name string) error {
	what := "remove coordinator " + name
	if err := o.checkGroupChange(); err != nil {
		return fmt.Errorf("%s: nothing changed: %w", what, err)
	}
	g, list, err := o.openGroup(ctx, name)
	if err != nil {
		return fmt.Errorf("%s: nothing changed: %w", what, err)
	}
	defer g.conn.Close()
	switch {
	case !slices.ContainsFunc(list, func(m groupMember) bool { return m.Name == name }):
		fmt.Fprintf(o.Out, "%s: %s is not a member of the group (%s): resuming\n", what, name, memberNames(list))
	case leaderOf(list) == name:
		return fmt.Errorf("%s: nothing changed: %s leads the group (%s); stop its coordinator first (mage stop %s/coordinator): "+
			"another takes over within a second; then run this again", what, name, memberNames(list), name)
	default:
		fmt.Fprintf(o.Out, "%s: the group is %s, led by %s\n", what, memberNames(list), leaderOf(list))
	}
	err = o.runSteps(ctx, what, []step{
		{"remove " + name + " from the group", func(ctx context.Context) (string, error) { return g.remove(ctx, o, name) }},
		{"stop " + name + "'s coordinator", func(ctx context.Context) (string, error) { return o.stopRemoved(ctx, name) }},
		{"rewrite the configs", o.reconfigureGroup},
		{"check", func(ctx context.Context) (string, error) { return o.checkGroup(ctx, g, "", name) }},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "%s: done.\n%s\n", what, o.groupAdvice(ctx, g))
	return nil
}

func (g *groupConn) remove(ctx context.Context, o *Ops, name string) (string, error) {
	list, err := g.members(ctx, o)
	if err != nil {
		return "", err
	}
	if !slices.ContainsFunc(list, func(m groupMember) bool { return m.Name == name }) {
		return fmt.Sprintf("%s is not a member: not removed again", name), nil
	}
	if leaderOf(list) == name {
		return "", fmt.Errorf("%s leads the group: stop its coordinator first (mage stop %s/coordinator), then run this again", name, name)
	}
	cctx, cancel := context.WithTimeout(ctx, memberCallTimeout)
	defer cancel()
	if _, err := g.change.Call(cctx, "coordinators.remove", name); err != nil {
		return "", fmt.Errorf("coordinators.remove %s: %w", name, err)
	}
	return fmt.Sprintf("coordinators.remove %s: removed for good", name), nil
}

// stopRemoved stops a removed coordinator if its host answers; an
// unreachable host is no failure: it is out of the group.
func (o *Ops) stopRemoved(ctx context.Context, name string) (string, error) {
	h, ok := o.Inv.host(name)
	if !ok {
		return fmt.Sprintf("%s is not in the inventory: nothing to stop from here (if its coordinator still runs, stop it on its host)", name), nil
	}
	ctx, cancel := context.WithTimeout(ctx, hostTimeout)
	defer cancel()
	c, err := Dial(ctx, h, o.Inv.KnownHosts)
	if err != nil {
		return fmt.Sprintf("%s is not reachable (%v): nothing stopped, which is fine: it is out of the group, and deploy will not start it again", name, err), nil
	}
	defer c.Close()
	systemd, err := c.serviceManager(ctx)
	if err != nil {
		return "", err
	}
	was, err := c.retire(ctx, RoleCoordinator, systemd)
	if err != nil {
		return "", fmt.Errorf("%w (%s is out of the group already: stop it by hand, mage stop %s/coordinator)", err, name, name)
	}
	verb := "stopped"
	if !was {
		verb = "was not running"
	}
	return fmt.Sprintf("%s's coordinator %s; its raft log stays in %s until you delete it (it never serves again under this name)", name, verb, txlogPath(h)), nil
}

// ReplaceCoordinator removes old from the group, then adds new.
func (o *Ops) ReplaceCoordinator(ctx context.Context, old, new, binary string, wait time.Duration) error {
	if old == new {
		return fmt.Errorf("replace coordinator %s by %s: nothing changed: a removed name never comes back: bring the host back under a new name", old, new)
	}
	if h, ok := o.Inv.host(new); !ok || !h.Has(RoleCoordinator) {
		return fmt.Errorf("replace coordinator %s by %s: nothing changed: %w: give %s the coordinator role and coordinator_listen in the inventory first, "+
			"and take the role off %s in the same edit", old, new, ErrInventory, new, old)
	}
	fmt.Fprintf(o.Out, "replace coordinator %s by %s: remove %s, then add %s\n", old, new, old, new)
	if err := o.RemoveCoordinator(ctx, old); err != nil {
		return err
	}
	return o.AddCoordinator(ctx, new, binary, wait)
}
