package coordinator

import (
	"slices"
	"time"

	"github.com/twopc/twopc/protocol"
)

// TxView is a transaction this coordinator has not finished, as an
// operator sees it (the status page, twopc txn list).
type TxView struct {
	ID   string
	Keys []string // that it may write
	// State is where it is in the protocol (protocol.State): "preparing"
	// (votes awaited), "committing" (committed, its COMMIT record on its
	// way to disk), "committed" (in doubt: not every participant
	// acknowledged), "aborting"/"aborted" (aborts being logged or
	// delivered) or "resolving" (of an earlier life, recovery asking the
	// participants whether all hold it).
	State string
	// Since is when this coordinator took it on: when the write started,
	// or, for one recovered from the log, when the recovery did.
	Since time.Time
	// Records are those its coordinator logged for it, in order: by this
	// life, or the one recovery found in the log.
	Records []protocol.Record
}

// Transactions lists the transactions this coordinator has not finished,
// oldest id first. It does no I/O and holds no lock a write waits for.
func (c *Coordinator) Transactions() []TxView {
	var out []TxView
	c.txs.Range(func(_, v any) bool {
		t := v.(*tx)
		t.mu.Lock()
		out = append(out, TxView{ID: t.id, Keys: t.m.Keys(), State: t.m.State().String(), Since: t.started,
			Records: slices.Clone(t.logged)})
		t.mu.Unlock()
		return true
	})
	slices.SortFunc(out, func(a, b TxView) int { return protocol.CompareTxIDs(a.ID, b.ID) })
	return out
}
