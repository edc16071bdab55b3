package coordinator

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twopc/twopc/protocol"
)

// PendingTx is a transaction not finished everywhere, as operators see
// it (the status page, twopc txn list and explain): the coordinator's
// view joined with what each participant holds prepared.
type PendingTx struct {
	ID   string
	Keys []string
	// State is the coordinator's (see TxView), or "unknown" when only
	// participants hold it: the coordinator has forgotten it (presumed
	// abort) or it is of an earlier life it did not recover.
	State string
	// Age is how long it has been unfinished; 0 when nobody knows (a
	// participant reloaded it at a restart).
	Age        time.Duration
	PreparedAt []string // participants that hold it prepared
	Silent     []string // participants that did not say what they hold
	WaitsFor   string   // what has to happen for it to finish
	Records    []protocol.Record
}

// probeTimeout bounds each participant's answer to Pending.
const probeTimeout = time.Second

// Pending lists what is not finished in the cluster, the oldest first:
// the coordinator's unfinished transactions and what every participant
// holds prepared, asked of all at once (each within probeTimeout; one
// that does not answer is listed as silent).
func (c *Coordinator) Pending(ctx context.Context) []PendingTx {
	before := c.Transactions()
	var (
		mu       sync.Mutex
		prepared = map[string][]protocol.PreparedTx{}
		wg       sync.WaitGroup
	)
	for _, m := range c.roster.Load().members {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			if pts, err := m.PreparedTxs(ctx); err == nil {
				mu.Lock()
				prepared[m.Name] = pts
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	after := c.Transactions()
	return withoutFinished(pendingTxs(time.Now(), after, c.roster.Load().names(), prepared), before, after)
}

// withoutFinished drops what only participants held at the probe but the
// coordinator finished meanwhile (known before, gone after): the probes
// and the coordinator's lists are not one snapshot.
func withoutFinished(txs []PendingTx, before, after []TxView) []PendingTx {
	gone := map[string]bool{}
	for _, v := range before {
		gone[v.ID] = true
	}
	for _, v := range after {
		delete(gone, v.ID)
	}
	out := txs[:0]
	for _, t := range txs {
		if !(t.State == "unknown" && gone[t.ID]) {
			out = append(out, t)
		}
	}
	return out
}

// pendingTxs joins txs (the coordinator's) with prepared, what each
// participant in names holds; a name missing from prepared did not
// answer. The oldest come first.
func pendingTxs(now time.Time, txs []TxView, names []string, prepared map[string][]protocol.PreparedTx) []PendingTx {
	byID := map[string]*PendingTx{}
	var out []*PendingTx
	for _, v := range txs {
		p := &PendingTx{ID: v.ID, Keys: v.Keys, State: v.State, Age: now.Sub(v.Since), Records: v.Records}
		byID[v.ID] = p
		out = append(out, p)
	}
	var silent []string
	for _, name := range names {
		pts, ok := prepared[name]
		if !ok {
			silent = append(silent, name)
			continue
		}
		for _, pt := range pts {
			p := byID[pt.TxID]
			if p == nil {
				p = &PendingTx{ID: pt.TxID, State: "unknown"}
				byID[pt.TxID] = p
				out = append(out, p)
			}
			p.PreparedAt = append(p.PreparedAt, name)
			for _, k := range pt.Keys {
				if !slices.Contains(p.Keys, k) {
					p.Keys = append(p.Keys, k)
				}
			}
			if p.State == "unknown" && !pt.Since.IsZero() {
				p.Age = max(p.Age, now.Sub(pt.Since))
			}
		}
	}
	res := make([]PendingTx, len(out))
	for i, p := range out {
		p.Silent = silent
		p.WaitsFor = waitsFor(p, names, silent)
		res[i] = *p
	}
	slices.SortStableFunc(res, func(a, b PendingTx) int {
		return cmp.Or(cmp.Compare(b.Age, a.Age), strings.Compare(a.ID, b.ID))
	})
	return res
}

// waitsFor says what has to happen for p to finish.
func waitsFor(p *PendingTx, names, silent []string) string {
	// Those still to act: holders of the prepared record, and the silent,
	// who may hold it too.
	var pending []string
	for _, n := range names {
		switch {
		case slices.Contains(silent, n):
			pending = append(pending, n+" (offline)")
		case slices.Contains(p.PreparedAt, n):
			pending = append(pending, n)
		}
	}
	list := strings.Join(pending, ", ")
	switch p.State {
	case "preparing":
		var votes []string
		for _, n := range names {
			if !slices.Contains(p.PreparedAt, n) {
				votes = append(votes, n)
			}
		}
		if len(votes) == 0 {
			return "the decision (every vote is in)"
		}
		return "votes of " + strings.Join(votes, ", ")
	case "committing":
		return "its COMMIT record to reach the disk"
	case "committed":
		if list == "" {
			return "its END record (every participant has applied it)"
		}
		return "commit acknowledgement from " + list
	case "aborting":
		return "its ABORT record to reach the disk"
	case "aborted":
		if list == "" {
			return "nothing: every participant has dropped it"
		}
		return "abort delivery to " + list
	case "resolving":
		return "recovery: each participant to say whether it holds it prepared; still to answer or act: " + cmp.Or(list, "none")
	}
	return "the participants' resolvers, which ask the coordinator for its outcome (it does not know it: presumed abort)"
}
