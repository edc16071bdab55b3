package rpc

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
)

// Replies. A reply of up to flushAt bytes is built in a pooled buffer and
// sent, as before; it fits in the base charge of every request. A bigger
// one is first encoded into a sink that only counts, so that its size is
// known before a byte of it is kept: over Limits.MaxReplyBytes it becomes
// a TooLarge fault, otherwise the request's account is charged its size
// and it is encoded again, straight onto the connection, with that
// Content-Length. The reply then costs what the result itself holds, never
// a copy of its XML.

// errOverLimit stops the counting of a reply past its limit.
var errOverLimit = errors.New("reply over its limit")

// counter is a sink that keeps nothing.
type counter struct{ n, limit int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	if c.n > c.limit {
		return len(p), errOverLimit
	}
	return len(p), nil
}

// multicallResults is system.multicall's result: its entries were sized,
// limited and charged one by one as they ran (see multicall).
type multicallResults []any

// reply sends result, or the fault that replaces it, and returns that
// fault's code (0: the result went out).
func (s *Server) reply(ctx context.Context, w http.ResponseWriter, acct *account, method string, result any) int {
	limit := s.lim.MaxReplyBytes
	if m, ok := result.(multicallResults); ok {
		result, limit = []any(m), math.MaxInt64
	}
	e := getEncoder()
	defer putEncoder(e)
	e.sink = &counter{limit: limit}
	err := e.response(result)
	switch {
	case errors.Is(err, errOverLimit) || err == nil && e.size() > limit:
		s.writeFault(w, Faultf(TooLarge, "the reply to %s exceeds the limit of %d bytes", method, limit))
		return TooLarge
	case err != nil:
		s.log.Warn("rpc: cannot encode result", "method", method, "err", err)
		s.writeFault(w, Faultf(InternalError, "internal error: %v", err))
		return InternalError
	case e.sent == 0:
		writeXML(w, e.buf.Bytes()) // small: it is all in the buffer
		return 0
	}
	size := e.size()
	if !acct.reserve(ctx, acct.body+size) {
		s.writeFault(w, acct.b.busy("a reply of "+strconv.FormatInt(size, 10)+" bytes", "the call was made, but its reply was dropped"))
		return Unavailable
	}
	e.reset(w)
	h := w.Header()
	h.Set("Content-Type", "text/xml; charset=utf-8")
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	_ = e.response(result) // the same bytes as counted; a failed write means the client is gone
	e.flush()
	return 0
}

// valueSize returns the length of v's <value>, or errOverLimit once it
// passes limit, or the error that makes v impossible to encode.
func valueSize(v any, limit int64) (int64, error) {
	e := getEncoder()
	defer putEncoder(e)
	e.sink = &counter{limit: limit}
	if err := e.value(v, 0); err != nil {
		return 0, err
	}
	if e.size() > limit {
		return 0, errOverLimit
	}
	return e.size(), nil
}
