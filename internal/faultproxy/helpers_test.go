package faultproxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// fakeClock is moved by hand. Every After it serves is announced on
// armed, so that a test knows when the proxy holds a chunk back.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeTimer
	armed   chan time.Duration
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1e9, 0), armed: make(chan time.Duration, 1024)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, fakeTimer{c.now.Add(d), ch})
	c.armed <- d
	return ch
}

// advance moves the clock by d and fires the timers that are due.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
		} else {
			w.ch <- c.now
		}
	}
	c.waiters = kept
}

// waitArmed waits for the proxy to hold a chunk back for d.
func (c *fakeClock) waitArmed(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case got := <-c.armed:
		if got != d {
			t.Fatalf("the proxy waits %v, want %v", got, d)
		}
	case <-time.After(10 * time.Second): // a guard, not a measurement
		t.Fatal("the proxy never held a chunk back")
	}
}

// rig is a proxy in front of a listener the test owns.
type rig struct {
	t      *testing.T
	p      *Proxy
	target net.Listener
}

func newRig(t *testing.T, clock Clock) *rig {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p, err := listen(ln.Addr().String(), clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
		ln.Close()
	})
	return &rig{t: t, p: p, target: ln}
}

// connect opens a connection through the proxy and returns both ends:
// the caller's and the target's.
func (r *rig) connect() (caller, target *net.TCPConn) {
	r.t.Helper()
	c, err := net.Dial("tcp", r.p.Addr())
	if err != nil {
		r.t.Fatal(err)
	}
	s, err := r.target.Accept()
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// send writes s to c.
func send(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// expect reads exactly len(want) bytes from c and compares them. The
// deadline is a guard against a hang, not a measurement.
func expect(t *testing.T, c net.Conn, want string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading %q: got %q, %v", want, got, err)
	}
	if string(got) != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// expectNothing checks that nothing is waiting to be read on c. Bytes
// the proxy wrote on loopback are in c's buffer before its Write returns,
// so a proxy that delivered what it should hold fails this at once; a
// correct one makes the read wait out its (short) deadline.
func expectNothing(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(time.Millisecond))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %q, %v: want nothing yet", buf[:n], err)
	}
}

// expectBroken checks that c was torn down: a read ends with an error
// (reset, or EOF) rather than waiting.
func expectBroken(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the connection is still open: want it reset")
	}
	if err == nil {
		t.Fatalf("read %q on a connection that should be reset", buf[:n])
	}
}

// expectDialBroken checks that a connection to addr is reset: the proxy
// accepts it and resets it at once, which the dial itself may already
// report.
func expectDialBroken(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer c.Close()
	expectBroken(t, c)
}

// until polls cond, for conditions the proxy has no event for (bytes it
// read and discarded); the bound is a guard, not a measurement.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(time.Millisecond) // poll interval
	}
}
