package web

import (
	"cmp"
	"github.com/twopc/twopc/protocol"
	"slices"
	"strings"
	"time"

	"github.com/twopc/twopc/coordinator"
)

// pendingTx is a transaction not finished everywhere, as the page shows
// it: joined from the coordinator's view and the participants' prepared
// lists.
type pendingTx struct {
	ID   string
	Keys []string
	// State is the coordinator's (see coordinator.TxView), or "unknown"
	// when only participants hold it: the coordinator has forgotten it
	// (presumed abort) or it is of an earlier life it did not recover.
	State string
	// Age is how long it has been unfinished; 0 when nobody knows (a
	// participant reloaded it at a restart).
	Age        time.Duration
	PreparedAt []string // participants that hold it prepared
	WaitsFor   string
}

// pendingTxs joins txs (the coordinator's) with prepared, what each
// participant in names holds; a name missing from prepared did not
// answer. The oldest come first.
func pendingTxs(now time.Time, txs []coordinator.TxView, names []string, prepared map[string][]protocol.PreparedTx) []pendingTx {
	byID := map[string]*pendingTx{}
	var out []*pendingTx
	for _, v := range txs {
		p := &pendingTx{ID: v.ID, Keys: v.Keys, State: v.State, Age: now.Sub(v.Since)}
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
				p = &pendingTx{ID: pt.TxID, State: "unknown"}
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
	res := make([]pendingTx, len(out))
	for i, p := range out {
		p.WaitsFor = waitsFor(p, names, silent)
		res[i] = *p
	}
	slices.SortStableFunc(res, func(a, b pendingTx) int {
		return cmp.Or(cmp.Compare(b.Age, a.Age), strings.Compare(a.ID, b.ID))
	})
	return res
}

// waitsFor says what has to happen for p to finish.
func waitsFor(p *pendingTx, names, silent []string) string {
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
