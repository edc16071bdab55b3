package logging

import (
	"fmt"
	"io"
	"log/slog"
)

// Field names shared by every process. Use them rather than spelling a
// name anew: "tx" in one process and "txid" in another cannot be joined.
const (
	TxID        = "txid"        // a transaction id, e.g. "3.1207"
	Keys        = "keys"        // the keys a transaction writes (never values)
	Participant = "participant" // a participant's configured name
	Term        = "term"        // a leader's term (several coordinators)
	Role        = "role"        // coordinator or participant, on every line
	Err         = "err"
)

// Formats are the values --log-format takes.
var Formats = []string{"text", "json"}

// New returns a logger that writes to w in format ("text" or "json"),
// every line carrying role.
func New(w io.Writer, format, role string) (*slog.Logger, error) {
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(w, nil)
	case "json":
		h = slog.NewJSONHandler(w, nil)
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
	return slog.New(h).With(Role, role), nil
}
