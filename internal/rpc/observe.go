package rpc

import "time"

// CallInfo describes one answered call, for an observer (metrics).
type CallInfo struct {
	// Method is the registered method called, or "" when the request
	// could not be decoded or named no method this server has: callers
	// choose method names, so passing them on unchecked would let any
	// client grow an observer's tables without bound.
	Method string
	// Code is 0 for a result, else the fault code sent.
	Code int
	// Duration runs from the start of the request (for a
	// system.multicall entry, of the entry) to the answer being ready.
	Duration time.Duration
}

// SetObserver installs f, which is told of every call answered: each
// request, and each entry of a system.multicall (which is also counted as
// a call of its own). Call it before serving; f must be quick and safe
// for concurrent use.
func (s *Server) SetObserver(f func(CallInfo)) { s.observe = f }

// observed tells the observer, if any, how the call of method that
// started at start was answered.
func (s *Server) observed(method string, code int, start time.Time) {
	if s.observe == nil {
		return
	}
	if _, ok := s.lookup(method); !ok {
		method = ""
	}
	s.observe(CallInfo{Method: method, Code: code, Duration: time.Since(start)})
}
