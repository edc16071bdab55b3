package rpc

import (
	"errors"
	"fmt"
)

// Fault is an XML-RPC fault: the error a server sends back instead of a
// result. It is the only error type this package puts on the wire, and the
// codes below are the one table of fault codes for the whole project; the
// README's table documents them for clients.
type Fault struct {
	Code    int
	Message string
}

// Application fault codes. Clients branch on these, so they never change
// meaning; add new ones at the end.
const (
	NotFound      = 1 // key not found
	Conflict      = 2 // aborted because of a conflicting transaction; safe to retry
	Unavailable   = 3 // a participant is unavailable; aborted, safe to retry
	TooLarge      = 4 // request, key, value or nesting beyond a limit
	NotAuthorised = 5 // the caller may not do this
	// OutcomeUnknown: the transaction may or may not have taken effect
	// (the coordinator's log failed, or it stopped waiting); every replica
	// will agree once the coordinator has recovered. Read before retrying.
	OutcomeUnknown = 6
	// StaleTerm: a participant refused a coordinator's request because it
	// has heard from a coordinator of a higher term (fencing: see
	// participant/doc.go). The message names both terms.
	StaleTerm = 7
)

// XML-RPC interoperability fault codes, from the "specification for fault
// code interoperability" that Python, Apache and most servers follow.
const (
	ParseError     = -32700 // not well-formed XML, or a scalar that does not parse
	InvalidRequest = -32600 // well-formed XML that is not a valid methodCall
	MethodNotFound = -32601 // no such method
	InvalidParams  = -32602 // wrong number or types of params
	InternalError  = -32603 // the server failed; the detail is in its log
	TransportError = -32300 // the request did not arrive whole: too slow, or cut off
)

// Faultf returns a Fault with a formatted message.
func Faultf(code int, format string, args ...any) *Fault {
	return &Fault{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (f *Fault) Error() string {
	if f == nil {
		return "fault <nil>" // a typed nil in an error must not panic a logger
	}
	return fmt.Sprintf("fault %d: %s", f.Code, f.Message)
}

// asFault reports whether err is, or wraps, a *Fault.
func asFault(err error) (*Fault, bool) {
	if err == nil {
		return nil, false // without the escaping f: most calls succeed
	}
	var f *Fault
	if errors.As(err, &f) && f != nil {
		return f, true
	}
	return nil, false
}
