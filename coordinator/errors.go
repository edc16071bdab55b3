package coordinator

import "errors"

// Errors a client of the coordinator can get; package api maps each to
// its documented fault code. All but ErrOutcomeUnknown mean the call had
// no effect.
var (
	// ErrNotFound: get of a key that has no value.
	ErrNotFound = errors.New("key not found")
	// ErrConflict: another transaction held a key; safe to retry.
	ErrConflict = errors.New("aborted: conflicting transaction")
	// ErrUnavailable: a participant did not vote in time; safe to retry.
	ErrUnavailable = errors.New("aborted: participant unavailable")
	// ErrStopped: the coordinator is shutting down; nothing was done.
	ErrStopped = errors.New("coordinator is shutting down")
	// ErrNotLeading: one of several coordinators could not confirm that
	// it still leads, so it answered no read; safe to retry (another
	// coordinator may lead now).
	ErrNotLeading = errors.New("this coordinator could not confirm that it still leads the group")
	// ErrOutcomeUnknown: the decision log failed while the transaction
	// was being decided, or the caller stopped waiting. It may or may not
	// have taken effect; every participant will agree on which once the
	// coordinator has recovered. Not safe to retry blindly.
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrTooLarge: what the transaction reads would pass
	// Config.MaxResultBytes; nothing written.
	ErrTooLarge = errors.New("too large")
	// ErrDiverged: the replicas gave different results for the same
	// transaction, which means they hold different data. Nothing was
	// written. A bug to report.
	ErrDiverged = errors.New("aborted: replicas diverged")
)
