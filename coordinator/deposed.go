package coordinator

import (
	"errors"
	"log/slog"

	"github.com/twopc/twopc/protocol"
)

// A participant that has heard from a coordinator of a higher term
// refuses this one's calls (fencing: participant/doc.go). The refusal is
// a failed call like any other, never a vote or an acknowledgement, so
// the protocol needs nothing more; but it means this coordinator can no
// longer get anything done, which someone must hear of: Config.Deposed.

// noticeDeposed calls Config.Deposed, once, if err is a participant's
// refusal of this coordinator's term.
func (c *Coordinator) noticeDeposed(err error) {
	if err == nil {
		return // without the escaping stale: most calls succeed
	}
	var stale *protocol.StaleTermError
	if errors.As(err, &stale) {
		c.deposed.Do(func() { c.cfg.Deposed(stale.Seen) })
	}
}

func logDeposed(log *slog.Logger, seen, ours uint64) {
	log.Error("coordinator: a participant has seen a term above ours, so another coordinator leads, or this coordinator's txlog was lost; "+
		"participants refuse every call of ours", "seen", seen, "term", ours)
}
