package rpc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Handler serves one method. params are decoded values (see doc.go for the
// types). A returned error that is, or wraps, a *Fault goes to the client
// as that fault; any other error becomes an InternalError fault. ctx is the
// HTTP request's: it is cancelled when the client goes away.
type Handler func(ctx context.Context, params []any) (any, error)

// Method is a registered method with its introspection data.
type Method struct {
	Name string
	Help string // returned by system.methodHelp
	// Signature as system.methodSignature returns it: each entry is
	// [return type, param types...], e.g. {{"boolean", "string", "string"}}.
	Signature [][]string
	Handler   Handler
	// ReadParam, if set, reads the call's one param without a tree of
	// any (see ValueReader): the handler then gets what it returns as
	// params[0]. Whatever it does not read whole (false, or a call of
	// another shape) is decoded as usual, and the handler gets that: it
	// must take both.
	ReadParam ParamReader
}

// ParamReader reads a call's one param: see Method.ReadParam.
type ParamReader func(r *ValueReader) (any, bool)

// Server is an http.Handler that serves XML-RPC calls to registered methods
// at "/" and "/RPC2". It is safe for concurrent use.
type Server struct {
	lim       Limits
	log       *slog.Logger
	authorize Authorizer     // nil: everyone may call everything
	observe   func(CallInfo) // nil: nobody
	creds     []Credential
	budget    *budget
	streams   *streamSet // nil: no streams (AcceptStreams)

	mu      sync.RWMutex
	methods map[string]Method
	readers atomic.Bool // some method has a ReadParam
}

// NewServer returns a server with the system.* methods registered. A nil
// logger discards what the server would log (tests); a program passes its
// own, never relying on the global default.
func NewServer(lim Limits, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lim = lim.orDefaults()
	s := &Server{lim: lim, log: log, methods: map[string]Method{}, budget: newBudget(lim.MaxInflightBytes, lim.BusyWait)}
	s.registerSystem()
	return s
}

// Register adds a method. It panics if the name is taken or invalid, or the
// handler is nil: those are programming errors, found at start-up.
func (s *Server) Register(m Method) {
	if f := checkMethodName(m.Name); f != nil {
		panic("rpc: Register: " + f.Message)
	}
	if m.Handler == nil {
		panic(fmt.Sprintf("rpc: Register: method %q has no handler", m.Name))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.methods[m.Name]; dup {
		panic(fmt.Sprintf("rpc: Register: method %q registered twice", m.Name))
	}
	s.methods[m.Name] = m
	if m.ReadParam != nil {
		s.readers.Store(true)
	}
}

// readerOf is the param reader of method, or nil.
func (s *Server) readerOf(method string) ParamReader {
	m, _ := s.lookup(method)
	return m.ReadParam
}

func (s *Server) lookup(name string) (Method, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.methods[name]
	return m, ok
}

// ServeHTTP answers one XML-RPC call. Every answer to a POST is HTTP 200,
// faults included, as XML-RPC clients expect.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The two paths Python's SimpleXMLRPCServer serves by default.
	if r.URL.Path != "/" && r.URL.Path != "/RPC2" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "this is an XML-RPC endpoint: POST a methodCall to it", http.StatusMethodNotAllowed)
		return
	}
	if s.streams != nil && r.Header.Get("Upgrade") == StreamProtocol {
		s.serveStream(w, r)
		return
	}
	start := time.Now()
	req := &request{caller: Present(PresentedToken(r)), header: r.Header}
	maxBody, f := s.admitRequest(r, req.caller)
	if f != nil {
		s.observed("", f.Code, start)
		s.refuse(w, r, f)
		return
	}
	acct := &req.acct
	acct.b = s.budget
	defer acct.release()
	declared := r.ContentLength
	if declared < 0 { // not declared: it may be as long as allowed
		declared = maxBody
	}
	acct.body = bodyCharge(declared)
	if !acct.reserve(r.Context(), acct.body) {
		s.observed("", Unavailable, start)
		s.refuse(w, r, s.budget.busy("a request of "+strconv.FormatInt(declared, 10)+" bytes", "nothing was done, retry"))
		return
	}
	// MaxBytesReader also tells net/http to close the connection rather
	// than read the rest of an oversized body.
	lim := s.lim
	lim.MaxBodyBytes = maxBody
	body := http.MaxBytesReader(w, r.Body, maxBody)
	var readerOf func(string) ParamReader // nil: no method reads its param, skip trying
	if s.readers.Load() {
		readerOf = s.readerOf
	}
	method, params, err := decodeCall(body, lim, r.ContentLength, readerOf)
	if err != nil {
		f, _ := asFault(err) // DecodeCall returns only faults
		f = f.outgoing()
		s.log.Info("rpc: refused request", "remote", r.RemoteAddr, "code", f.Code, "fault", f.Message)
		if f.Code == TransportError {
			w.Header().Set("Connection", "close") // what is left of the body cannot be read
		}
		s.observed("", f.Code, start)
		s.writeFault(w, f)
		return
	}
	ctx := withRequest(r.Context(), req)
	result, err := s.call(ctx, method, params)
	if err != nil {
		f := s.faultOf(method, err)
		s.observed(method, f.Code, start)
		s.writeFault(w, f)
		return
	}
	s.observed(method, s.reply(ctx, w, acct, method, result), start)
}

// refuse answers f to a request whose body has not been read, and closes
// the connection. A client that sends its whole body before it reads
// (Python's xmlrpc.client does), or that is slow to read, would see the
// connection reset instead of the fault, so a body of up to maxDrain
// bytes is first read and thrown away, which costs no memory (and less
// CPU than decoding it would have); a longer one is not read at all, and
// neither is the body of a client that waits for "100 Continue".
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, f *Fault) {
	s.log.Info("rpc: refused request before reading it", "remote", r.RemoteAddr, "code", f.Code, "fault", f.Message)
	drain := min(2*s.lim.MaxBodyBytes, maxDrain)
	if r.ContentLength <= drain && !strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, drain))
	}
	w.Header().Set("Connection", "close")
	s.writeFault(w, f)
}

// maxDrain bounds what refuse reads of a refused body.
const maxDrain = 8 << 20

// call runs the named method. A panic in the handler is recovered, logged
// with its stack and turned into an InternalError fault: one bad request
// must not take the server down.
func (s *Server) call(ctx context.Context, name string, params []any) (result any, err error) {
	if s.authorize != nil {
		if err := s.authorize(name, callerFrom(ctx)); err != nil {
			return nil, err
		}
	}
	m, ok := s.lookup(name)
	if !ok {
		return nil, Faultf(MethodNotFound, "unknown method %s", excerpt(name))
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("rpc: handler panicked", "method", name, "panic", p, "stack", string(debug.Stack()))
			result, err = nil, Faultf(InternalError, "internal error: method %s panicked", name)
		}
	}()
	return m.Handler(ctx, params)
}

// faultOf turns a handler's error into the fault to send.
func (s *Server) faultOf(method string, err error) *Fault {
	if f, ok := asFault(err); ok {
		return f.outgoing()
	}
	f := Faultf(InternalError, "internal error: %v", err).outgoing()
	s.log.Warn("rpc: handler failed", "method", method, "err", f.Message)
	return f
}

func (s *Server) writeFault(w http.ResponseWriter, f *Fault) {
	var buf bytes.Buffer
	if err := EncodeFault(&buf, f.outgoing()); err != nil {
		// Unreachable: EncodeFault only fails on its writer, a buffer.
		s.log.Error("rpc: cannot encode fault", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	writeXML(w, buf.Bytes())
}

const xmlContentType = "text/xml; charset=utf-8"

// wholeWriter is a ResponseWriter that sends a whole reply of one type
// at once (httpserve's, which serves client calls).
type wholeWriter interface {
	WriteWhole(contentType string, body []byte)
}

func writeXML(w http.ResponseWriter, doc []byte) {
	if ww, ok := w.(wholeWriter); ok {
		ww.WriteWhole(xmlContentType, doc)
		return
	}
	h := w.Header()
	h.Set("Content-Type", xmlContentType)
	h.Set("Content-Length", strconv.Itoa(len(doc)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(doc) // a failed write means the client is gone
}
