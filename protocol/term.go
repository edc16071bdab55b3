package protocol

import (
	"context"
	"fmt"
)

// A term numbers a coordinator's right to lead: today the epoch it logs
// at each start, with several coordinators the leader's raft term. Every
// request a coordinator sends to a participant carries its term; a
// participant keeps the highest term it has seen, durably, and refuses
// requests of a lower one. So a coordinator that was paused or cut off,
// and came back after another took over, can change nothing at a
// participant that has heard from the newer one. Terms start at 1; 0
// means a request carries no term (an operator's tool, a participant's
// own resolver, or a test calling a store directly).

type termKey struct{}

// WithTerm returns ctx carrying the term of the coordinator a request
// comes from: how a participant's server hands it to the store.
func WithTerm(ctx context.Context, term uint64) context.Context {
	return context.WithValue(ctx, termKey{}, term)
}

// TermOf returns the term ctx carries, 0 if none.
func TermOf(ctx context.Context) uint64 {
	t, _ := ctx.Value(termKey{}).(uint64)
	return t
}

// StaleTermError is a participant's refusal of a request of term Sent:
// it has seen term Seen, higher. The coordinator that sent it has been
// replaced (or its log lost); nothing the request asked was done.
type StaleTermError struct {
	Seen, Sent uint64
}

const staleTermFormat = "stale term: this participant has seen term %d, the request carries term %d"

func (e *StaleTermError) Error() string { return fmt.Sprintf(staleTermFormat, e.Seen, e.Sent) }

// ParseStaleTerm reads a StaleTermError back from its message: a fault
// on the wire carries only a code and text.
func ParseStaleTerm(msg string) (*StaleTermError, bool) {
	var e StaleTermError
	if n, err := fmt.Sscanf(msg, staleTermFormat, &e.Seen, &e.Sent); err != nil || n != 2 {
		return nil, false
	}
	return &e, true
}
