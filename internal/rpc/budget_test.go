package rpc

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestBudget(t *testing.T) {
	ctx := context.Background()
	b := newBudget(8<<20, time.Millisecond)          // big requests may hold 6 MiB
	b.rest = func(_ time.Duration, f func()) { f() } // lanes: TestBudgetLaneRests
	big, other, small := &account{b: b}, &account{b: b}, &account{b: b}
	if !big.reserve(ctx, 4<<20) {
		t.Fatal("4 MiB of an empty 8 MiB budget refused")
	}
	if other.reserve(ctx, 3<<20) {
		t.Error("a second big account got past the big requests' share")
	}
	if !small.reserve(ctx, 1<<20) || !other.reserve(ctx, 1<<20) {
		t.Error("small accounts were locked out by a big one")
	}
	if small.reserve(ctx, 3<<20) {
		t.Error("a small account grew past the big requests' share")
	}
	big.release()
	if !other.reserve(ctx, 6<<20) {
		t.Error("released memory was not given again")
	}
	other.release()
	small.release()
	if b.used != 0 || b.big != 0 {
		t.Errorf("after every release: used %d, big %d", b.used, b.big)
	}
	// A request larger than the budget allows runs alone, not never.
	if !big.reserve(ctx, 100<<20) || big.held != 6<<20 {
		t.Errorf("an oversized charge: held %d", big.held)
	}
	big.release()
	// Big requests are served bigLanes at a time, whatever their size.
	b.lanes = 1
	if !big.reserve(ctx, 2<<20) || other.reserve(ctx, 2<<20) {
		t.Error("two big accounts were served at once with one lane")
	}
	big.release()
	if !other.reserve(ctx, 2<<20) {
		t.Error("a freed lane was not given again")
	}
	other.release()
	// Small accounts can use it all, and no more.
	var smalls []*account
	for range 8 {
		a := &account{b: b}
		if !a.reserve(ctx, 1<<20) {
			t.Fatal("small accounts refused within the budget")
		}
		smalls = append(smalls, a)
	}
	if (&account{b: b}).reserve(ctx, 1) {
		t.Error("the budget was overrun")
	}
	for _, a := range smalls {
		a.release()
	}
}

// A charge waits for memory to be released, not for its time to pass.
func TestBudgetWaitsForRelease(t *testing.T) {
	ctx := context.Background()
	b := newBudget(4<<20, time.Hour)
	b.rest = func(_ time.Duration, f func()) { f() }
	first, second := &account{b: b}, &account{b: b}
	first.reserve(ctx, 3<<20)
	got := make(chan bool)
	go func() { got <- second.reserve(ctx, 2<<20) }()
	first.release()
	if !<-got {
		t.Fatal("the waiting charge was refused after the release")
	}
	second.release()
	// A big request held back by the lanes is let in when a big one
	// leaves, whatever small ones do meanwhile.
	b.lanes = 1
	small := &account{b: b}
	first.reserve(ctx, 2<<20)
	go func() { got <- second.reserve(ctx, 2<<20) }()
	small.reserve(ctx, 1<<10)
	small.release()
	first.release()
	if !<-got {
		t.Fatal("the big request waiting for a lane was refused after one was freed")
	}
}

// While ordinary requests are in flight, a lane rests after a big request
// for as long as that request held it; with none, it is free at once.
func TestBudgetLaneRests(t *testing.T) {
	ctx := context.Background()
	b := newBudget(64<<20, time.Millisecond)
	b.lanes = 1
	var rest []func()
	var rested time.Duration
	b.rest = func(d time.Duration, f func()) { rested, rest = d, append(rest, f) }
	clock := time.Unix(1000, 0)
	b.now = func() time.Time { return clock }
	big, next, small := &account{b: b}, &account{b: b}, &account{b: b}

	big.reserve(ctx, 2<<20)
	small.reserve(ctx, 1<<10)
	clock = clock.Add(40 * time.Millisecond)
	big.release()
	if len(rest) != 1 || rested != 40*time.Millisecond {
		t.Fatalf("the lane rests %v (%d times), want as long as it was held", rested, len(rest))
	}
	if next.reserve(ctx, 2<<20) {
		t.Error("a big request got the lane while it rested")
	}
	rest[0]()
	if !next.reserve(ctx, 2<<20) {
		t.Error("the lane was not given after its rest")
	}
	small.release()
	next.release()
	if len(rest) != 1 {
		t.Error("the lane rested with no ordinary request in flight")
	}
	if !big.reserve(ctx, 2<<20) {
		t.Error("the lane was not free at once")
	}
	big.release()
}

// A request the budget cannot cover waits BusyWait, then gets fault 3
// (busy) without being run; the requests in flight are unaffected.
func TestServeBusy(t *testing.T) {
	lim := Limits{MaxInflightBytes: 16 << 20, BusyWait: 10 * time.Millisecond}
	ts, _ := newTestServer(t, lim)
	entered, release := make(chan struct{}), make(chan struct{})
	ts.Config.Handler.(*Server).Register(Method{Name: "hold", Handler: func(context.Context, []any) (any, error) {
		entered <- struct{}{}
		<-release
		return true, nil
	}})
	// 1.5 MB of body is charged 12 MB: two cannot be in flight at once.
	heavy := encodeCall(t, "hold", strings.Repeat("x", 1500<<10))
	done := make(chan error)
	go func() { _, err := post(t, ts.URL, heavy); done <- err }()
	<-entered
	_, err := post(t, ts.URL, heavy)
	wantFault(t, err, Unavailable, "server busy: a request of 1536")
	if got, err := post(t, ts.URL, encodeCall(t, "first", "small")); err != nil || got != "small" {
		t.Errorf("a small request while a big one holds the budget: %v, %v", got, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
