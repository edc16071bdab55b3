package coordinator

import "errors"

// Errors a client of the coordinator can get; the XML-RPC layer maps each
// to its documented fault code. All of them mean the call had no effect.
var (
	// ErrNotFound: get of a key that has no value.
	ErrNotFound = errors.New("key not found")
	// ErrConflict: another transaction held the key; safe to retry.
	ErrConflict = errors.New("aborted: conflicting transaction on the key")
	// ErrUnavailable: a participant did not vote in time; safe to retry.
	ErrUnavailable = errors.New("aborted: participant unavailable")
	// ErrStopped: the coordinator is shutting down.
	ErrStopped = errors.New("coordinator is shutting down")
)
