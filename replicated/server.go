package replicated

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/twopc/twopc/consensus"
	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/txlog"
)

// Instance is the coordinator incarnation that serves while this
// coordinator leads one term.
type Instance interface {
	// Handler serves the public API (XML-RPC).
	Handler() http.Handler
	// Close stops it: calls in flight end with "outcome unknown".
	Close()
}

// Config of one of several coordinators.
type Config struct {
	// Raft's Peers are every coordinator's XML-RPC URL by name, where
	// requests are forwarded to the leader (and raft's messages go, to
	// /raft).
	Raft consensus.Config
	// Forward carries forwarded requests (TLS; no token of its own: the
	// client's Authorization header goes along).
	Forward http.RoundTripper
	// Start builds the incarnation for term from the replicated state,
	// its decisions going to log; its API should have g's methods too
	// (g.Register).
	Start func(g *Server, term uint64, st *txlog.State, log *consensus.Log) (Instance, error)
	// FollowerMaxProcs, if positive, is GOMAXPROCS while another
	// coordinator leads or none does; the leader runs with the value
	// the process started with (procs.go).
	FollowerMaxProcs int
	Logger           *slog.Logger
}

// Server is one coordinator of several.
type Server struct {
	cfg  Config
	node *consensus.Node
	log  *slog.Logger

	mu    sync.Mutex // serialises role changes
	cur   atomic.Pointer[current]
	procs procs
}

// current is what this coordinator is now.
type current struct {
	role  consensus.Role
	inst  Instance               // set while it serves
	proxy *httputil.ReverseProxy // to the leader, while another leads
	// over ends when the role does: a request forwarded to a leader
	// that stopped answering (paused, cut off) is not waited for
	// beyond the election that replaces it.
	over context.Context
	end  context.CancelFunc
}

func newCurrent(r consensus.Role) *current {
	c := &current{role: r}
	c.over, c.end = context.WithCancel(context.Background())
	return c
}

// Start joins the group.
func Start(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, procs: newProcs(cfg.FollowerMaxProcs)}
	s.cur.Store(newCurrent(consensus.Role{}))
	cfg.Raft.OnRole = s.changeRole
	node, err := consensus.Start(cfg.Raft)
	if err != nil {
		return nil, err
	}
	s.node = node
	return s, nil
}

// RaftHandler receives the other coordinators' raft messages.
func (s *Server) RaftHandler() http.Handler { return s.node.Handler() }

// ServingTerm is the term this coordinator serves in per raft, 0 if
// none (consensus.Node.ServingTerm).
func (s *Server) ServingTerm() uint64 { return s.node.ServingTerm() }

// Instance is the incarnation serving now, nil if this coordinator does
// not serve.
func (s *Server) Instance() Instance { return s.cur.Load().inst }

// Role is this coordinator's role now.
func (s *Server) Role() (role consensus.Role, serving bool) {
	c := s.cur.Load()
	return c.role, c.inst != nil
}

// changeRole follows raft: it builds the incarnation when this
// coordinator starts serving, closes it when it stops, and points
// forwarding at the leader.
func (s *Server) changeRole(r consensus.Role) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur.Load()
	next := newCurrent(r)
	s.procs.set(r.Leader == s.cfg.Raft.Name)
	defer old.end()
	if old.inst != nil && !(r.Serving && r.Term == old.role.Term) {
		s.log.Warn("stopped leading: closing this coordinator's incarnation; the next leader recovers its transactions", "term", old.role.Term, "leader", r.Leader)
		s.cur.Store(newCurrent(r)) // nothing served while it closes
		old.inst.Close()
	}
	switch {
	case r.Serving:
		inst, err := s.cfg.Start(s, r.Term, r.State, s.node.Log(r.Term))
		if err != nil {
			s.log.Error("leading, but the coordinator could not start; another should take over", "term", r.Term, "err", err)
			break
		}
		next.inst = inst
		s.log.Info("leading: serving", "term", r.Term, "commits_to_finish", len(r.State.Pending))
	case r.Leader != "" && r.Leader != s.cfg.Raft.Name:
		if lu := s.node.URL(r.Leader); lu == "" {
			s.log.Error("following a leader this coordinator has no URL for: requests get fault 3 until the next change", "leader", r.Leader)
		} else if u, err := url.Parse(lu); err == nil {
			next.proxy = s.newProxy(u)
		}
		s.log.Info("following", "leader", r.Leader, "term", r.Term)
	}
	s.cur.Store(next)
}

func (s *Server) newProxy(u *url.URL) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.URL.Path = u.Path // the leader's XML-RPC path, whatever the client used
			pr.Out.Host = u.Host
		},
		Transport: s.cfg.Forward,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var op *net.OpError
			if errors.As(err, &op) && op.Op == "dial" {
				// Never connected: the leader did not get the request.
				writeFault(w, rpc.Unavailable, fmt.Sprintf("the leader %s does not answer (%v): nothing was done, safe to retry; if it failed, another takes over within a second", u.Host, err))
				return
			}
			// It may have got the request (or stopped leading while it
			// had it): the outcome is unknown.
			writeFault(w, rpc.OutcomeUnknown, fmt.Sprintf("forwarding to the leader %s failed: %v; the outcome is unknown", u.Host, err))
		},
	}
}

// ServeHTTP serves the public API: here if this coordinator serves, at
// the leader otherwise.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := s.cur.Load()
	switch {
	case c.inst != nil:
		c.inst.Handler().ServeHTTP(w, r)
	case c.proxy != nil:
		ctx, stop := context.WithCancel(r.Context())
		defer stop()
		defer context.AfterFunc(c.over, stop)()
		c.proxy.ServeHTTP(w, r.WithContext(ctx))
	default:
		writeFault(w, rpc.Unavailable, "no coordinator leads yet (an election is on): nothing was done, safe to retry")
	}
}

// writeFault answers an XML-RPC request with a fault.
func writeFault(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	if err := rpc.EncodeFault(w, &rpc.Fault{Code: code, Message: msg}); err != nil {
		http.Error(w, msg, http.StatusInternalServerError)
	}
}

// Stop leaves the group and closes the incarnation, if any.
func (s *Server) Stop() {
	s.node.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cur.Load()
	if c.inst != nil {
		c.inst.Close()
	}
	c.end()
	s.cur.Store(newCurrent(consensus.Role{}))
}
