package rpc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The system.* methods are the de facto standard introspection and
// batching methods (Python's SimpleXMLRPCServer, Apache), registered on
// every Server.

func (s *Server) registerSystem() {
	s.Register(Method{
		Name:      "system.listMethods",
		Help:      "Returns the names of all methods, sorted.",
		Signature: [][]string{{"array"}},
		Handler:   s.listMethods,
	})
	s.Register(Method{
		Name:      "system.methodHelp",
		Help:      "Returns the help text of the named method.",
		Signature: [][]string{{"string", "string"}},
		Handler:   s.methodHelp,
	})
	s.Register(Method{
		Name:      "system.methodSignature",
		Help:      `Returns the signatures of the named method, each [return type, param types...], or "undef" when it has none.`,
		Signature: [][]string{{"array", "string"}},
		Handler:   s.methodSignature,
	})
	s.Register(Method{
		Name: "system.multicall",
		Help: "Runs several calls in one request, in order. Takes an array of {methodName, params} structs; " +
			"returns an array with, for each call, a one-element array holding its result or a {faultCode, faultString} struct.",
		Signature: [][]string{{"array", "array"}},
		Handler:   s.multicall,
	})
}

func (s *Server) listMethods(_ context.Context, params []any) (any, error) {
	if err := Arity(params); err != nil {
		return nil, err
	}
	s.mu.RLock()
	names := make([]string, 0, len(s.methods))
	for name := range s.methods {
		names = append(names, name)
	}
	s.mu.RUnlock()
	slices.Sort(names)
	return names, nil
}

// method returns the method named by the one param of methodHelp and
// methodSignature.
func (s *Server) method(params []any) (Method, error) {
	if err := Arity(params, "name"); err != nil {
		return Method{}, err
	}
	name, err := String(params, 0, "name")
	if err != nil {
		return Method{}, err
	}
	m, ok := s.lookup(name)
	if !ok {
		return Method{}, Faultf(MethodNotFound, "unknown method %s", excerpt(name))
	}
	return m, nil
}

func (s *Server) methodHelp(_ context.Context, params []any) (any, error) {
	m, err := s.method(params)
	if err != nil {
		return nil, err
	}
	return m.Help, nil
}

func (s *Server) methodSignature(_ context.Context, params []any) (any, error) {
	m, err := s.method(params)
	if err != nil {
		return nil, err
	}
	if len(m.Signature) == 0 {
		return "undef", nil // the introspection spec's answer for "not known"
	}
	return m.Signature, nil
}

// multicall runs each entry in order. A failing or malformed entry gets a
// fault entry and the others still run: only a batch over the limit, or
// one that is not an array, fails as a whole.
//
// The entries' results together may take Limits.MaxReplyBytes of XML: the
// entry whose result would pass it gets a TooLarge fault instead, and the
// entries after it are not run (each says so), so that a small request
// cannot build a huge reply, while every entry that ran, and may have
// written, still reports what it did. Each result is charged to the
// request's account as it comes; room for a fault in every place is
// charged first, so that no entry that ran loses its answer for want of
// memory for a fault.
func (s *Server) multicall(ctx context.Context, params []any) (any, error) {
	if err := Arity(params, "calls"); err != nil {
		return nil, err
	}
	calls, ok := params[0].([]any)
	if !ok {
		return nil, mistyped(0, "calls", "array", params[0])
	}
	if len(calls) > s.lim.MaxMulticall {
		return nil, Faultf(TooLarge, "system.multicall of %d calls exceeds the limit of %d", len(calls), s.lim.MaxMulticall)
	}
	acct := accountFrom(ctx)
	charged := acct.body + int64(len(calls))*maxFaultEntry
	if !acct.reserve(ctx, charged) {
		return nil, acct.b.busy(fmt.Sprintf("a system.multicall of %d calls", len(calls)), "nothing was done, retry")
	}
	limit := s.lim.MaxReplyBytes
	results := make([]any, len(calls))
	var (
		used int64  // XML of the results so far
		stop *Fault // once set, the entries left are not run
	)
	for i, c := range calls {
		if stop == nil && ctx.Err() != nil {
			// The client is gone: no one will read the results, and every
			// entry still run would fail at once but leave its work
			// (a read queued at a participant, say) to be done anyway.
			stop = Faultf(Unavailable, "multicall entry not run: the request was cancelled")
		}
		if stop != nil {
			results[i] = faultEntry(stop)
			continue
		}
		start := time.Now()
		name, result, f := s.multicallEntry(ctx, i, c)
		if f == nil {
			entry := []any{result}
			n, err := valueSize(entry, limit-used)
			switch {
			case errors.Is(err, errOverLimit):
				f = Faultf(TooLarge, "multicall entry %d ran, but its result would take the reply past the limit of %d bytes", i+1, limit)
				stop = Faultf(TooLarge, "multicall entry not run: the reply reached the limit of %d bytes", limit)
			case err != nil:
				// One bad result costs its entry, not the whole batch.
				s.log.Warn("rpc: cannot encode result", "method", name, "err", err)
				f = Faultf(InternalError, "internal error: %v", err)
			case !acct.reserve(ctx, charged+used+n):
				f = acct.b.busy(fmt.Sprintf("the result of multicall entry %d", i+1), "the call was made, but its result was dropped")
				stop = acct.b.busy("the reply", "this multicall entry was not run")
			default:
				used += n
				results[i] = entry
				s.observed(name, 0, start)
				continue
			}
		}
		results[i] = faultEntry(f)
		s.observed(name, f.Code, start)
	}
	return multicallResults(results), nil
}

// maxFaultEntry bounds the XML of one fault entry: a message of
// maxMessage bytes (plus clip's note), each of which XML may write as 5.
const maxFaultEntry = 5*(maxMessage+32) + 256

// multicallEntry runs entry i (0-based): the method it named (if any),
// and its result or the fault that replaces it.
func (s *Server) multicallEntry(ctx context.Context, i int, c any) (string, any, *Fault) {
	name, params, f := parseMulticallEntry(i, c)
	if f != nil {
		return "", nil, f
	}
	if name == "system.multicall" {
		// Nesting would multiply the MaxMulticall limit.
		return name, nil, Faultf(InvalidRequest, "multicall entry %d: system.multicall cannot be nested", i+1)
	}
	result, err := s.call(ctx, name, params)
	if err != nil {
		return name, nil, s.faultOf(name, err)
	}
	return name, result, nil
}

func parseMulticallEntry(i int, c any) (string, []any, *Fault) {
	m, ok := c.(map[string]any)
	if !ok {
		return "", nil, Faultf(InvalidParams, "multicall entry %d: want struct {methodName, params}, got %s", i+1, TypeName(c))
	}
	name, ok := m["methodName"].(string)
	if !ok {
		return "", nil, Faultf(InvalidParams, "multicall entry %d: methodName: want string, got %s", i+1, TypeName(m["methodName"]))
	}
	if f := checkMethodName(name); f != nil {
		return "", nil, Faultf(InvalidRequest, "multicall entry %d: %s", i+1, f.Message)
	}
	params, ok := m["params"].([]any)
	if !ok {
		return "", nil, Faultf(InvalidParams, "multicall entry %d: params: want array, got %s", i+1, TypeName(m["params"]))
	}
	return name, params, nil
}

func faultEntry(f *Fault) map[string]any {
	f = f.outgoing()
	return map[string]any{"faultCode": f.Code, "faultString": f.Message}
}
