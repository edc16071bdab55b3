package launch

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
)

// AddParticipant starts one more participant, called name, with an empty
// database, on a free port, and returns its URL once it serves. The
// coordinator does not know it: that is what `twopc members add` is for.
func (c *Cluster) AddParticipant(ctx context.Context, name string) (string, error) {
	if c.Process(name) != nil {
		return "", fmt.Errorf("launch: a process is already called %s", name)
	}
	addrs, err := ports(0, 1)
	if err != nil {
		return "", err
	}
	coordURL := c.coordArg
	scheme, _, _ := strings.Cut(coordURL, "://")
	url := scheme + "://" + addrs[0] + "/RPC2"
	args := []string{"participant", "--listen", addrs[0], "--db", filepath.Join(c.cfg.Dir, name+".db"), "--coordinator", coordURL,
		"--peer-token-file", c.peerTokenFile(), "--max-procs", "1"}
	args = append(args, c.tlsArgs()...)
	args = join(args, durationFlag("--resolve-after", c.cfg.ResolveAfter), durationFlag("--resolve-interval", c.cfg.ResolveInterval),
		c.cfg.ParticipantArgs)
	c.mu.Lock()
	c.addrs[name] = addrs[0]
	c.add(name, url, args)
	c.mu.Unlock()
	if err := c.start(ctx, name); err != nil {
		return "", err
	}
	return url, nil
}
