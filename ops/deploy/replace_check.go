package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twopc/twopc/coordinator"
	"github.com/twopc/twopc/ops/drill"
	"github.com/twopc/twopc/peer"
	"github.com/twopc/twopc/protocol"
)

// digestsTimeout bounds the wait for equal digests. Replicas differ for
// a moment whenever a write is in flight (a commit reaches them one by
// one, and a prepared one counts), so the check asks again until they
// agree; a cluster under a steady write load may not give it a moment.
const digestsTimeout = time.Minute

// finalCheck: the old participant is gone from status, every one left
// (the new one among them) is active, and their digests are equal.
func (rp *replacement) finalCheck(ctx context.Context) (string, error) {
	st, err := rp.statusNow(ctx)
	if err != nil {
		return "", err
	}
	var states, bad []string
	for _, p := range st.Participants {
		states = append(states, p.Name+" "+p.State)
		if p.State != coordinator.StateActive {
			bad = append(bad, p.Name+" is "+p.State)
		}
	}
	if participant(st, rp.Old) != nil {
		bad = append(bad, rp.Old+" is still a participant")
	}
	if participant(st, rp.New) == nil {
		bad = append(bad, rp.New+" is not a participant")
	}
	if len(bad) > 0 {
		return "", fmt.Errorf("status: %s (participants: %s)", strings.Join(bad, "; "), strings.Join(states, ", "))
	}
	var hosts []Host
	for _, p := range st.Participants {
		i := slices.IndexFunc(rp.o.Inv.Hosts, func(h Host) bool { return h.Name == p.Name })
		if i < 0 {
			return "", fmt.Errorf("participant %s is not in the inventory: its digest cannot be read from here", p.Name)
		}
		hosts = append(hosts, rp.o.Inv.Hosts[i])
	}
	d, err := rp.equalDigests(ctx, hosts)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("status: %s; %s gone\ndigests equal on %s: %d keys, hash %.16s, nothing prepared",
		strings.Join(states, ", "), rp.Old, names(st), d.Keys, d.Hash), nil
}

// equalDigests asks every host's participant for its digest, with the
// peer token through SSH, until all are equal with nothing prepared, or
// digestsTimeout passes.
func (rp *replacement) equalDigests(ctx context.Context, hosts []Host) (protocol.Digest, error) {
	ctx, cancel := context.WithTimeout(ctx, digestsTimeout)
	defer cancel()
	var names []string
	clients := make([]*peer.Client, len(hosts))
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		names = append(names, h.Name)
		wg.Go(func() {
			c, err := Dial(ctx, h, rp.o.Inv.KnownHosts)
			if err != nil {
				errs[i] = err
				return
			}
			context.AfterFunc(ctx, func() { c.Close() })
			clients[i] = peer.NewClient(h.LocalURL(RoleParticipant), c.roleClient(RoleParticipant, rp.o.tls, rp.o.token), 0)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return protocol.Digest{}, err
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		ds := make([]protocol.Digest, len(clients))
		var err error
		for i, pc := range clients {
			if ds[i], err = pc.Digest(ctx); err != nil {
				err = fmt.Errorf("%s digest: %w", names[i], err)
				break
			}
		}
		if err == nil {
			if err = drill.CompareDigests(names, ds); err == nil {
				return ds[0], nil
			}
		}
		select {
		case <-ctx.Done():
			return protocol.Digest{}, fmt.Errorf("%w\n(after %v: a write in flight makes replicas differ for a moment; on a busy cluster, run this command again when writes pause: the steps done are skipped)",
				err, digestsTimeout)
		case <-tick.C:
		}
	}
}
