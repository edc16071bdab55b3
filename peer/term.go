package peer

import (
	"context"
	"errors"
	"strconv"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/protocol"
)

// TermHeader carries a coordinator's term (protocol.WithTerm) on every
// request of its Client: an HTTP header rather than a param, so that it
// covers every method and every call of a batch for a few bytes. A
// participant refuses a request of a lower term than it has seen with
// fault rpc.StaleTerm, which the Client returns as a
// *protocol.StaleTermError.
const TermHeader = "X-Twopc-Term"

// call calls method through rc, returning a stale-term fault as the
// *protocol.StaleTermError it stands for.
func call(ctx context.Context, rc *rpc.Client, method string, args ...any) (any, error) {
	res, err := rc.Call(ctx, method, args...)
	return res, staleTermOf(err)
}

// callReading is call with rpc.Client.CallReading.
func callReading(ctx context.Context, rc *rpc.Client, read func(*rpc.ValueReader) bool, method string, args ...any) (any, bool, error) {
	res, done, err := rc.CallReading(ctx, read, method, args...)
	return res, done, staleTermOf(err)
}

// staleTermOf returns err, or the *protocol.StaleTermError a StaleTerm
// fault carries.
func staleTermOf(err error) error {
	if err == nil {
		return nil // without the escaping f: most calls succeed
	}
	var f *rpc.Fault
	if !errors.As(err, &f) || f.Code != rpc.StaleTerm {
		return err
	}
	if e, ok := protocol.ParseStaleTerm(f.Message); ok {
		return e
	}
	return err
}

// termContext returns ctx carrying the term of the request the handler
// serves (none without the header); must says the method changes data,
// so it must carry one.
func termContext(ctx context.Context, method string, must bool) (context.Context, error) {
	h := rpc.RequestHeader(ctx, TermHeader)
	if h == "" {
		if must {
			return nil, rpc.Faultf(rpc.InvalidRequest, "%s changes data, so it must carry the coordinator's term in the %s header", method, TermHeader)
		}
		return ctx, nil
	}
	term, err := strconv.ParseUint(h, 10, 64)
	if err != nil || term == 0 {
		return nil, rpc.Faultf(rpc.InvalidRequest, "%s header %.32q: want a term, a positive integer", TermHeader, h)
	}
	return protocol.WithTerm(ctx, term), nil
}

func isStaleTerm(err error) bool {
	if err == nil {
		return false // without the escaping stale: most calls succeed
	}
	var stale *protocol.StaleTermError
	return errors.As(err, &stale)
}

// faultOf returns err, or the StaleTerm fault that says it on the wire.
func faultOf(err error) error {
	var stale *protocol.StaleTermError
	if errors.As(err, &stale) {
		return &rpc.Fault{Code: rpc.StaleTerm, Message: stale.Error()}
	}
	return err
}
