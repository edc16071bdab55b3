package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/twopc/twopc/internal/faultproxy"
)

// pair names a link: a is a coordinator, b a participant or a
// coordinator that comes after a.
type pair struct{ a, b string }

// startLinks puts a faultproxy.Link between every coordinator and every
// participant, and between every two coordinators, at the addresses in
// addrs (by name): a coordinator's calls to a participant go through
// their link's Forward proxy, the participant's questions about
// outcomes through its Backward one, and a coordinator's raft messages
// and forwarded requests to another through theirs. So a fault on a link
// reaches all traffic between the two, as a fault of the network between
// two hosts would: a participant cut off from a coordinator cannot ask it
// anything either, and a coordinator cut off from the others neither
// hears them nor is heard. The drill's own calls, and clients', go to
// the real addresses and bypass the links: its checks must see the
// cluster, not the faults.
func (c *Cluster) startLinks(addrs map[string]string) error {
	c.links = map[pair]*faultproxy.Link{}
	for i, a := range c.coords {
		for _, b := range append(c.coords[i+1:], c.parts...) {
			fwd, err := faultproxy.Listen(addrs[b])
			if err != nil {
				return err
			}
			bwd, err := faultproxy.Listen(addrs[a])
			if err != nil {
				fwd.Close()
				return err
			}
			c.links[pair{a, b}] = &faultproxy.Link{Forward: fwd, Backward: bwd}
		}
	}
	return nil
}

func (c *Cluster) closeLinks() {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, l := range c.links {
		l.Close()
	}
}

// via is the address at which process from reaches process to: through
// their link, if there is one, or directly.
func (c *Cluster) via(from, to string, addrs map[string]string) string {
	if l := c.links[pair{from, to}]; l != nil {
		return l.Forward.Addr()
	}
	if l := c.links[pair{to, from}]; l != nil {
		return l.Backward.Addr()
	}
	return addrs[to]
}

// Link is the fault proxies between the coordinator and the participant
// called name, or nil if the cluster runs without them
// (Config.NetworkFaults). With several coordinators, see LinkBetween.
func (c *Cluster) Link(name string) *faultproxy.Link { return c.LinkBetween(c.Coordinator(), name) }

// LinkBetween is the fault proxies between coordinator a and process b
// (a participant, or a coordinator after a in Coordinators), or nil.
func (c *Cluster) LinkBetween(a, b string) *faultproxy.Link {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.links[pair{a, b}]
}

// LinkFault starts a network fault ("delay", "drop" or "cut") on the link
// between coordinator a and process b (a participant or another
// coordinator), in direction "up" (a to b), "down" or "both", and returns
// the function that ends it (see faultproxy.Link.Apply). Without
// Config.NetworkFaults it is errors.ErrUnsupported.
func (c *Cluster) LinkFault(_ context.Context, a, b, fault, direction string, delay time.Duration) (end func(), err error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.links == nil {
		return nil, fmt.Errorf("launch: the cluster runs without fault proxies (Config.NetworkFaults): %w", errors.ErrUnsupported)
	}
	if l := c.links[pair{a, b}]; l != nil {
		return l.Apply(fault, direction, delay)
	}
	if l := c.links[pair{b, a}]; l != nil && slices.Contains(c.coords, b) {
		// Stored the other way round: a's "up" is the link's Down.
		switch direction {
		case "up":
			direction = "down"
		case "down":
			direction = "up"
		}
		return l.Apply(fault, direction, delay)
	}
	// errors.ErrUnsupported: a coordinator added later (AddCoordinator)
	// has links to the participants only.
	return nil, fmt.Errorf("launch: no link between %q and %q (links join a coordinator, %v, to another or to a participant, %v): %w",
		a, b, c.coords, c.parts, errors.ErrUnsupported)
}

// Wipe deletes the database of the participant called name (the file,
// its -wal and -shm, and its vote logs), so that Restart starts it empty: a participant
// lost with its disk and replaced under the same name. It must not be
// running.
func (c *Cluster) Wipe(_ context.Context, name string) error {
	if c.isCoordinator(name) {
		return errors.New("launch: wipe: only a participant's data can be wiped")
	}
	p, err := c.process(name)
	if err != nil {
		return err
	}
	if p.Running() {
		return fmt.Errorf("launch: wipe %s: it is running; kill it first", name)
	}
	db := c.dbPath(name)
	var errs []error
	logs, err := filepath.Glob(db + "-votes.*")
	if err != nil {
		return err
	}
	for _, f := range append([]string{db, db + "-wal", db + "-shm"}, logs...) {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// dbPath is the database of the participant called name.
func (c *Cluster) dbPath(name string) string { return filepath.Join(c.cfg.Dir, name+".db") }
