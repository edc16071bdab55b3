package faultproxy

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"
)

// Without faults the proxy is a wire: every byte both ways, in order,
// and each side's end of stream.
func TestForwardsBothWays(t *testing.T) {
	r := newRig(t, realClock{})
	caller, target := r.connect()
	up, down := make([]byte, 1<<20), make([]byte, 1<<20) // many chunks
	rand.Read(up)
	rand.Read(down)
	errc := make(chan error, 2)
	go func() { _, err := caller.Write(up); caller.CloseWrite(); errc <- err }()
	go func() { _, err := target.Write(down); target.CloseWrite(); errc <- err }()
	gotUp, err := io.ReadAll(target)
	if err != nil || !bytes.Equal(gotUp, up) {
		t.Fatalf("up: %d bytes, %v; want the %d sent, then EOF", len(gotUp), err, len(up))
	}
	gotDown, err := io.ReadAll(caller)
	if err != nil || !bytes.Equal(gotDown, down) {
		t.Fatalf("down: %d bytes, %v; want the %d sent, then EOF", len(gotDown), err, len(down))
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if s := r.p.Stats(); s.Delivered[Up] != 1<<20 || s.Delivered[Down] != 1<<20 || s.Accepted != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// A delay holds each chunk for its length on the clock, in its direction
// only.
func TestDelayHoldsBytesForItsLength(t *testing.T) {
	clock := newFakeClock()
	r := newRig(t, clock)
	caller, target := r.connect()
	r.p.Delay(Up, time.Hour)
	send(t, caller, "ping")
	clock.waitArmed(t, time.Hour)
	expectNothing(t, target)
	send(t, target, "pong") // down is not delayed
	expect(t, caller, "pong")
	clock.advance(59 * time.Minute)
	expectNothing(t, target)
	clock.advance(time.Minute)
	expect(t, target, "ping")
}

// Ending a delay releases what it holds at once.
func TestEndingADelayReleasesWhatItHolds(t *testing.T) {
	clock := newFakeClock()
	r := newRig(t, clock)
	caller, target := r.connect()
	end := r.p.Delay(Down, time.Hour)
	send(t, target, "reply")
	clock.waitArmed(t, time.Hour)
	expectNothing(t, caller)
	end()
	expect(t, caller, "reply")
}

// A drop discards what it reads and keeps the connection open and
// silent; the other direction flows; once it ends, bytes flow again on
// the same connection.
func TestDropIsASilentBlackHole(t *testing.T) {
	r := newRig(t, realClock{})
	caller, target := r.connect()
	end := r.p.Drop(Up)
	send(t, caller, "lost")
	until(t, "the proxy has read and dropped 4 bytes", func() bool { return r.p.Stats().Dropped[Up] == 4 })
	expectNothing(t, target)
	send(t, target, "still here")
	expect(t, caller, "still here")
	end()
	send(t, caller, "kept")
	expect(t, target, "kept")
}

// A drop holds back the end of the stream: through a partition, the
// peer does not learn that the other side closed either.
func TestDropHoldsTheEndOfStream(t *testing.T) {
	clock := newFakeClock()
	r := newRig(t, clock)
	caller, target := r.connect()
	// The delay only tells the test when the proxy has read the FIN
	// (it arms the clock for it).
	endDelay, endDrop := r.p.Delay(Up, time.Hour), r.p.Drop(Up)
	caller.CloseWrite()
	clock.waitArmed(t, time.Hour)
	endDelay()
	expectNothing(t, target) // a FIN would read as EOF at once
	endDrop()
	target.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := target.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the drop: read %d, %v; want EOF", n, err)
	}
}

// A cut resets the connections that are open (both of their ends) and
// every new one while it lasts, which never reaches the target; after
// it, connections work again.
func TestCutResetsOpenAndNewConnections(t *testing.T) {
	r := newRig(t, realClock{})
	caller, target := r.connect()
	send(t, caller, "hi")
	expect(t, target, "hi")
	end := r.p.Cut()
	expectBroken(t, caller)
	expectBroken(t, target)

	expectDialBroken(t, r.p.Addr())

	end()
	after, err := net.Dial("tcp", r.p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	send(t, after, "after")
	// The first connection the target accepts since the cut is this
	// one: the one made during the cut never reached it.
	s, err := r.target.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	expect(t, s, "after")
	if st := r.p.Stats(); st.Reset != 2 || st.Open != 1 {
		t.Fatalf("stats %+v: want 2 resets (the open connection, the one during the cut), 1 open", st)
	}
}

// A target that is down gets its callers reset, not left hanging.
func TestTargetDownResetsTheCaller(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p, err := Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	expectDialBroken(t, p.Addr())
}

// Faults overlap: each is a hold its own end releases. Two drops: the
// direction drops until both end. Two delays: the longest one held
// counts. A drop and a delay on different directions at once.
func TestFaultsOverlap(t *testing.T) {
	clock := newFakeClock()
	r := newRig(t, clock)
	caller, target := r.connect()

	end1, end2 := r.p.Drop(Up), r.p.Drop(Up)
	end1()
	end1() // twice must not release the other drop
	send(t, caller, "a")
	until(t, "a dropped", func() bool { return r.p.Stats().Dropped[Up] == 1 })
	end2()
	send(t, caller, "b")
	expect(t, target, "b")

	long, short := r.p.Delay(Up, time.Hour), r.p.Delay(Up, time.Minute)
	endDrop := r.p.Drop(Down)
	send(t, caller, "c")
	clock.waitArmed(t, time.Hour)
	send(t, target, "x")
	until(t, "x dropped", func() bool { return r.p.Stats().Dropped[Down] == 1 })
	long()
	clock.waitArmed(t, time.Minute) // re-read on the change: now the shorter delay
	expectNothing(t, target)
	clock.advance(time.Minute)
	expect(t, target, "c")
	short()
	endDrop()
	send(t, target, "y")
	expect(t, caller, "y")
}

// Close resets every connection and ends every goroutine (the test's
// cleanup would hang otherwise).
func TestCloseResetsConnections(t *testing.T) {
	r := newRig(t, realClock{})
	caller, target := r.connect()
	r.p.Drop(Up) // a held end of stream must not keep Close waiting
	caller.CloseWrite()
	if err := r.p.Close(); err != nil {
		t.Fatal(err)
	}
	expectBroken(t, target)
	if _, err := net.Dial("tcp", r.p.Addr()); err == nil {
		t.Fatal("the proxy accepts after Close")
	}
}
