package httpserve

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server serves the calls of Paths itself and everything else with HTTP,
// whose Handler, timeouts, MaxHeaderBytes and ErrorLog it also uses.
type Server struct {
	HTTP  *http.Server
	Paths []string // e.g. "/RPC2"
	// Calls, if set, serves the calls of Paths: what HTTP.Handler routes
	// them to, without its routing (a ServeMux's was three allocations
	// a call).
	Calls http.Handler

	lines   [][]byte // "POST <path> HTTP/1.1\r\n", one per path
	handoff *connQueue

	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]bool // served here: conn -> busy
	stopped bool
	wg      sync.WaitGroup
}

// Serve accepts connections on ln until Shutdown, and returns
// http.ErrServerClosed then.
func (s *Server) Serve(ln net.Listener) error {
	defer ln.Close()
	for _, p := range s.Paths {
		s.lines = append(s.lines, []byte("POST "+p+" HTTP/1.1\r\n"))
	}
	s.handoff = newConnQueue(ln.Addr())
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.ln, s.conns = ln, map[net.Conn]bool{}
	s.mu.Unlock()
	httpDone := make(chan error, 1)
	go func() { httpDone <- s.HTTP.Serve(s.handoff) }()

	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closed() {
				<-httpDone
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors, say: wait as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			s.handoff.Close()
			<-httpDone
			return err
		}
		backoff = 0
		if !s.track(c) {
			c.Close()
			continue
		}
		go s.serveConn(c)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// Shutdown stops accepting, closes the connections waiting for a
// request, lets each busy one finish its reply (then closes it), shuts
// the http.Server down, and returns once all are done or ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	if s.ln != nil {
		s.ln.Close()
	}
	for c, busy := range s.conns {
		if !busy {
			c.Close()
		}
	}
	s.mu.Unlock()
	errc := make(chan error, 1)
	go func() { errc <- s.HTTP.Shutdown(ctx) }()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	err := <-errc
	if err == nil {
		err = ctx.Err()
	}
	return err
}

func (s *Server) closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// track adds a new connection, idle; false once shutting down.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.conns[c] = false
	s.wg.Add(1)
	return true
}

// setBusy marks c busy (a request began) or idle; false if the server is
// shutting down: c is then closed, and no request begins on it (Shutdown
// may have closed it as idle already, and a reply would be lost).
func (s *Server) setBusy(c net.Conn, busy bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.conns[c] = busy
	return true
}

// release forgets c, which is closed, hijacked or handed off.
func (s *Server) release(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// handOff gives c to the http.Server, with what br holds of it.
func (s *Server) handOff(c net.Conn, br *bufio.Reader) {
	_ = c.SetDeadline(time.Time{})
	s.handoff.put(&bufferedConn{Conn: c, r: br})
}

// bufferedConn is a connection whose first bytes were read into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite lets net/http half-close c before closing it, so that a
// client still sending gets the reply first (see lingerClose).
func (c *bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes c as lingerClose does, in the background: net/http closes
// a connection at once after a 400 to a request it could not parse,
// which resets it if the client's request is not all read, and the
// client's system then drops the 400 unread; in the background, so that
// net/http's goroutines and Shutdown do not wait the half second.
func (c *bufferedConn) Close() error {
	go lingerClose(c.Conn)
	return nil
}

// connQueue is the listener the http.Server accepts handed-off
// connections from.
type connQueue struct {
	addr net.Addr
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (q *connQueue) put(c net.Conn) {
	select {
	case q.ch <- c:
	case <-q.done:
		c.Close()
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }
