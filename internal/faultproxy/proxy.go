package faultproxy

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// dialTimeout bounds the connection to the target; on loopback a target
// that is down refuses at once, so this only guards against a stuck one.
const dialTimeout = 5 * time.Second

// Proxy forwards the TCP connections it accepts on a loopback port to one
// target, through the faults set on it. Its methods are safe for
// concurrent use.
type Proxy struct {
	target string
	ln     net.Listener
	clock  Clock
	f      *faults
	wg     sync.WaitGroup // the accept loop and every connection's goroutines

	mu     sync.Mutex
	conns  map[*pair]struct{}
	cuts   int // cuts held: new connections are reset while > 0
	closed bool

	accepted, reset    atomic.Int64
	delivered, dropped [2]atomic.Int64
}

// Stats counts what a proxy has done since it started.
type Stats struct {
	Accepted int64 // connections accepted
	Open     int   // connections forwarded now
	// Reset counts connections the proxy reset: by a cut, or because the
	// target could not be reached.
	Reset              int64
	Delivered, Dropped [2]int64 // bytes, by Direction
}

// Listen starts a proxy on a free loopback port that forwards to target
// (host:port).
func Listen(target string) (*Proxy, error) { return listen(target, realClock{}) }

func listen(target string, clock Clock) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p := &Proxy{target: target, ln: ln, clock: clock, f: newFaults(), conns: map[*pair]struct{}{}}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the proxy's host:port, where callers connect instead of the
// target's.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the host:port the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Delay delivers every chunk travelling in dir d after it was read, until
// end is called.
func (p *Proxy) Delay(dir Direction, d time.Duration) (end func()) { return p.f.delay(dir, d) }

// Drop discards what travels in dir, and holds back the end of the
// stream, until end is called.
func (p *Proxy) Drop(dir Direction) (end func()) { return p.f.drop(dir) }

// Cut resets every open connection, and every new one, until end is
// called.
func (p *Proxy) Cut() (end func()) {
	p.mu.Lock()
	p.cuts++
	open := p.conns
	p.conns = map[*pair]struct{}{}
	p.mu.Unlock()
	for c := range open {
		p.reset.Add(1) // before the reset, which a test may be waiting on
		c.reset()
	}
	return onlyOnce(func() {
		p.mu.Lock()
		p.cuts--
		p.mu.Unlock()
	})
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	open := len(p.conns)
	p.mu.Unlock()
	s := Stats{Accepted: p.accepted.Load(), Open: open, Reset: p.reset.Load()}
	for _, d := range []Direction{Up, Down} {
		s.Delivered[d], s.Dropped[d] = p.delivered[d].Load(), p.dropped[d].Load()
	}
	return s
}

// Close stops accepting, resets every connection and waits for the
// proxy's goroutines to end. It is idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	open := p.conns
	p.conns = map[*pair]struct{}{}
	p.mu.Unlock()
	err := p.ln.Close()
	for c := range open {
		c.reset()
	}
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of file descriptors, most likely: wait for some to be
			// freed rather than spin (as net/http's Serve does).
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.accepted.Add(1)
		p.wg.Go(func() { p.serve(c.(*net.TCPConn)) })
	}
}

// serve forwards one connection until both directions have ended or it
// is reset.
func (p *Proxy) serve(client *net.TCPConn) {
	if p.isCut() {
		p.reset.Add(1)
		resetConn(client)
		return
	}
	t, err := net.DialTimeout("tcp", p.target, dialTimeout)
	if err != nil {
		// The nearest a proxy can come to passing on a refusal.
		p.reset.Add(1)
		resetConn(client)
		return
	}
	c := &pair{client: client, target: t.(*net.TCPConn), done: make(chan struct{})}
	if !p.track(c) {
		p.reset.Add(1)
		c.reset()
		return
	}
	defer p.untrack(c)
	var wg sync.WaitGroup
	wg.Go(func() { p.pump(c, Up, c.client, c.target) })
	p.pump(c, Down, c.target, c.client)
	wg.Wait()
}

func (p *Proxy) isCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts > 0 || p.closed
}

// track registers c so that a cut or Close reaches it; it refuses while
// cut, under the same lock a cut takes, so no connection slips past one.
func (p *Proxy) track(c *pair) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cuts > 0 || p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c *pair) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// pair is one forwarded connection: the side that connected, and the
// proxy's connection to the target.
type pair struct {
	client, target *net.TCPConn
	done           chan struct{} // closed once the pair is torn down
	once           sync.Once
	ended          atomic.Int32 // directions whose end of stream was delivered
}

// reset tears the pair down with an RST on both sides: what its peers see
// when a host crashes or a firewall rejects.
func (c *pair) reset() {
	c.once.Do(func() {
		close(c.done)
		resetConn(c.client)
		resetConn(c.target)
	})
}

// finish closes the pair normally, once both directions have delivered
// their end of stream.
func (c *pair) finish() {
	c.once.Do(func() {
		close(c.done)
		c.client.Close()
		c.target.Close()
	})
}

// resetConn closes c with an RST instead of a FIN.
func resetConn(c *net.TCPConn) {
	c.SetLinger(0)
	c.Close()
}
