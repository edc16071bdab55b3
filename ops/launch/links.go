package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/twopc/twopc/internal/faultproxy"
)

// startLinks puts a faultproxy.Link between the coordinator (at
// coordAddr) and each participant (at its address): the coordinator's
// calls go through the link's Forward proxy, and the participant's
// questions about outcomes through its Backward one, so that a fault on
// the link reaches all traffic between the two, as a fault of the network
// between two hosts would: a participant cut off from its coordinator
// cannot ask it anything either. The drill's own calls to participants
// go to their real addresses and bypass the links: its checks must see
// the cluster, not the faults.
func (c *Cluster) startLinks(coordAddr string, partAddrs map[string]string) error {
	c.links = map[string]*faultproxy.Link{}
	for name, addr := range partAddrs {
		fwd, err := faultproxy.Listen(addr)
		if err != nil {
			return err
		}
		bwd, err := faultproxy.Listen(coordAddr)
		if err != nil {
			fwd.Close()
			return err
		}
		c.links[name] = &faultproxy.Link{Forward: fwd, Backward: bwd}
	}
	return nil
}

func (c *Cluster) closeLinks() {
	for _, l := range c.links {
		l.Close()
	}
}

// Link is the fault proxies between the coordinator and the participant
// called name, or nil if the cluster runs without them
// (Config.NetworkFaults).
func (c *Cluster) Link(name string) *faultproxy.Link { return c.links[name] }

// LinkFault starts a network fault ("delay", "drop" or "cut") on the link
// between the coordinator and the participant called name, in direction
// "up" (coordinator to participant), "down" or "both", and returns the
// function that ends it (see faultproxy.Link.Apply). Without
// Config.NetworkFaults it is errors.ErrUnsupported.
func (c *Cluster) LinkFault(_ context.Context, name, fault, direction string, delay time.Duration) (end func(), err error) {
	if c.links == nil {
		return nil, fmt.Errorf("launch: the cluster runs without fault proxies (Config.NetworkFaults): %w", errors.ErrUnsupported)
	}
	l := c.links[name]
	if l == nil {
		return nil, fmt.Errorf("launch: no participant %q (have %v)", name, c.Participants())
	}
	return l.Apply(fault, direction, delay)
}

// Wipe deletes the database of the participant called name (the file
// and its -wal and -shm), so that Restart starts it empty: a participant
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
	for _, f := range []string{db, db + "-wal", db + "-shm"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// dbPath is the database of the participant called name.
func (c *Cluster) dbPath(name string) string { return filepath.Join(c.cfg.Dir, name+".db") }
