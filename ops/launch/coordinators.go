package launch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/twopc/twopc/internal/faultproxy"
)

// A coordinator of several whose raft log is lost must not come back
// under its old name: it forgot its votes, and could vote twice in a
// term (README, "Several coordinators"). It is taken out of the group
// (coordinators.remove, on the leader) and a new coordinator, under a
// new name, joins in its place (started with --join, then
// coordinators.add). LoseCoordinator and AddCoordinator are the
// cluster's half of that; the group's half is the caller's (the
// drill's lose-follower).

// LoseCoordinator deletes the raft log of the coordinator called name,
// which must have been killed, as a lost disk would, and forgets it:
// Coordinators, Healthy, Close and the links no longer know it, and its
// name is never given to a coordinator again (AddCoordinator refuses
// it). Its process log stays in Dir. It does not take it out of the
// group: coordinators.remove on the leader does.
func (c *Cluster) LoseCoordinator(_ context.Context, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Contains(c.coords, name) {
		return fmt.Errorf("launch: lose %s: not a coordinator (have %v)", name, c.coords)
	}
	if len(c.coords) < 2 {
		return fmt.Errorf("launch: lose %s: the only coordinator", name)
	}
	if c.procs[name].Running() {
		return fmt.Errorf("launch: lose %s: it is running; kill it first", name)
	}
	log := c.TxlogPathOf(name)
	for _, f := range []string{log, log + ".compact.tmp"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("launch: lose %s: %w", name, err)
		}
	}
	c.coords = slices.DeleteFunc(c.coords, func(n string) bool { return n == name })
	c.names = slices.DeleteFunc(c.names, func(n string) bool { return n == name })
	delete(c.procs, name)
	delete(c.urls, name)
	c.removed = append(c.removed, name)
	// Its links lead nowhere now: closing them refuses what the others
	// still send it, as its dead host would.
	for p, l := range c.links {
		if p.a == name || p.b == name {
			l.Close()
			delete(c.links, p)
		}
	}
	return nil
}

// AddCoordinator starts a new coordinator called name, with an empty
// raft log, on a free port, with --join: it waits for the leader to send
// it the log once coordinators.add has made it a member. members are
// the group's members as they are now (name: URL; direct URLs do:
// name's own is added). It has the same --participants, peer token, TLS
// and flags as the others. It returns its URL once it serves, from when
// on Coordinators lists it. With Config.NetworkFaults it reaches each
// participant through a link of its own (LinkFault), but the other
// coordinators have none with it: they call it at the URL
// coordinators.add gives them all, and it calls them directly.
// The participants' --coordinator is not changed: they ask any
// coordinator of theirs that answers.
func (c *Cluster) AddCoordinator(ctx context.Context, name string, members map[string]string) (string, error) {
	c.mu.RLock()
	taken := c.procs[name] != nil || slices.Contains(c.removed, name)
	several := len(c.coords) > 1
	partAddrs := map[string]string{}
	for _, p := range c.names[len(c.coords):] {
		partAddrs[p] = c.addrs[p]
	}
	c.mu.RUnlock()
	switch {
	case taken:
		return "", fmt.Errorf("launch: add coordinator %s: the name was taken; a coordinator never comes back under its old name", name)
	case !several:
		return "", fmt.Errorf("launch: add coordinator %s: only a group of several coordinators takes another", name)
	case strings.ContainsAny(name, " \t\n,=/") || name == "":
		return "", fmt.Errorf("launch: add coordinator %q: want a word without spaces, commas, '=' or '/'", name)
	}
	addrs, err := ports(0, 1)
	if err != nil {
		return "", err
	}
	scheme, _, _ := strings.Cut(c.URL(c.Coordinator()), "://")
	url := func(addr string) string { return scheme + "://" + addr + "/RPC2" }
	self := url(addrs[0])
	group := maps.Clone(members)
	if group == nil {
		group = map[string]string{}
	}
	group[name] = self
	var list []string
	for n, u := range group {
		list = append(list, n+"="+u)
	}
	sort.Strings(list)
	links := map[pair]*faultproxy.Link{}
	var parts []string
	for _, p := range c.Participants() {
		to := partAddrs[p]
		if c.links != nil {
			fwd, err := faultproxy.Listen(to)
			if err != nil {
				for _, l := range links {
					l.Close()
				}
				return "", err
			}
			// The participants do not know it: no Backward.
			links[pair{name, p}] = &faultproxy.Link{Forward: fwd}
			to = fwd.Addr()
		}
		parts = append(parts, p+"="+url(to))
	}
	args := join([]string{"coordinator", "--listen", addrs[0], "--participants", strings.Join(parts, ","), "--log", c.TxlogPathOf(name),
		"--peer-token-file", c.peerTokenFile()},
		durationFlag("--prepare-timeout", c.cfg.PrepareTimeout), c.tlsArgs(), c.cfg.CoordinatorArgs,
		[]string{"--name", name, "--coordinators", strings.Join(list, ","), "--join", "--follower-max-procs", "1"})
	if c.cfg.ClientTokenFile != "" {
		args = append(args, "--client-token-file", c.cfg.ClientTokenFile)
	}
	c.mu.Lock()
	c.coords = append(c.coords, name)
	c.addrs[name] = addrs[0]
	c.add(name, self, args)
	maps.Copy(c.links, links)
	c.mu.Unlock()
	if err := c.start(ctx, name); err != nil {
		return "", err
	}
	return self, nil
}
