package rpc

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"time"
)

// Memory in flight. Every request a server handles holds an account on
// the server's budget (Limits.MaxInflightBytes): it is charged, before
// its body is read, what decoding the body can make of it, and later
// whatever its reply needs beyond that. When the budget cannot cover a
// charge, the request waits up to Limits.BusyWait for others to finish,
// then is refused with a Busy fault, so that load past the budget costs
// waiting and faults, never an out-of-memory.
//
// Accounts that hold more than smallCharge bytes (big bodies, big
// replies) are big requests. They may together take only bigShare of the
// budget, and only lanes of them are served at once (one per two CPUs):
// the rest of the memory, and the other CPUs, are kept for ordinary
// requests, so that big ones, however many, cannot lock out a put of a
// short value. A big request costs CPU in proportion to its size, and a
// stream of them would keep a lane's CPU busy: so when ordinary requests
// are in flight, a lane rests after a big request for as long as that
// request held it, which leaves big requests at most half of the lanes'
// time while others wait for CPU, and all of it when none do.

const (
	// decodeFactor: decoding holds up to about 8 bytes per body byte at
	// its peak (the body itself, the values, the scanner's stacks), for
	// the worst shapes (thousands of <value/> or <struct/>); ordinary
	// documents, mostly text, take 2 to 3.
	decodeFactor = 8
	// baseCharge covers what a request holds besides its body: its
	// goroutine, buffers, and a reply of up to flushAt bytes.
	baseCharge = 64 << 10
	// smallCharge is what an account may hold before it counts against
	// the big requests' share.
	smallCharge = 1 << 20
	bigShare    = 0.75
)

// bodyCharge is what a request with a body of n bytes is charged when it
// is admitted.
func bodyCharge(n int64) int64 { return baseCharge + decodeFactor*n }

type budget struct {
	total, bigCap int64
	lanes         int // big accounts served at once
	wait          time.Duration
	// The clock, and rest, which calls f after d: time's, or a test's.
	now  func() time.Time
	rest func(d time.Duration, f func())

	mu   sync.Mutex
	used int64 // sum of the accounts' holdings
	big  int64 // sum of the holdings over smallCharge
	bigs int   // accounts holding over smallCharge
	// Waiters wait on one of these, closed (and replaced) on a release
	// that may let them in: only a big account's release for a charge
	// that the big requests' share or lanes hold back, any release for
	// one the budget as a whole cannot cover. Waking every waiting big
	// request at every put's release kept a CPU busy under attack.
	freed, bigFreed chan struct{}
	// waiters counts those waiting on freed: with none, a release (every
	// request's) need not replace it.
	waiters int
}

func newBudget(total int64, wait time.Duration) *budget {
	return &budget{total: total, bigCap: int64(float64(total) * bigShare), lanes: max(1, runtime.GOMAXPROCS(0)/2),
		wait: wait, freed: make(chan struct{}), bigFreed: make(chan struct{}),
		now: time.Now, rest: func(d time.Duration, f func()) { time.AfterFunc(d, f) }}
}

// account is one request's holding.
type account struct {
	b       *budget
	held    int64
	body    int64     // charged for the body when the request was admitted
	bigFrom time.Time // when it took a lane
}

// bigPart is what a holding of n counts against the big requests' share.
func bigPart(n int64) int64 {
	if n > smallCharge {
		return n
	}
	return 0
}

// reserve grows the account's holding to n bytes, waiting up to the
// budget's wait (or until ctx ends) for room. It reports whether it got
// it; a holding never shrinks before release. A single request larger
// than the budget allows is cut to what it allows, so that it can run
// alone rather than never.
func (a *account) reserve(ctx context.Context, n int64) bool {
	b := a.b
	n = min(n, b.bigCap)
	if n <= a.held {
		return true
	}
	var timeout <-chan time.Time
	waiting := false // counted in b.waiters
	stopWaiting := func() {
		if waiting {
			b.waiters--
			waiting = false
		}
	}
	for {
		b.mu.Lock()
		stopWaiting()
		more, moreBig := n-a.held, bigPart(n)-bigPart(a.held)
		becomesBig := bigPart(a.held) == 0 && bigPart(n) > 0
		bigRoom := b.big+moreBig <= b.bigCap && (!becomesBig || b.bigs < b.lanes)
		if b.used+more <= b.total && bigRoom {
			b.used += more
			b.big += moreBig
			if becomesBig {
				b.bigs++
				a.bigFrom = b.now()
			}
			a.held = n
			b.mu.Unlock()
			return true
		}
		changed := b.bigFreed // only a big request's leaving can let this one in
		if bigRoom {
			changed = b.freed
			b.waiters++
			waiting = true
		}
		b.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(b.wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-changed:
			continue
		case <-timeout:
		case <-ctx.Done():
		}
		b.mu.Lock()
		stopWaiting()
		b.mu.Unlock()
		return false
	}
}

// release gives the account's holding back.
func (a *account) release() {
	if a.held == 0 {
		return
	}
	b := a.b
	b.mu.Lock()
	wasBig := bigPart(a.held) > 0
	b.used -= a.held
	b.big -= bigPart(a.held)
	a.held = 0
	if b.waiters > 0 {
		close(b.freed)
		b.freed = make(chan struct{})
	}
	ordinary := b.used > b.big // small requests are in flight
	b.mu.Unlock()
	if !wasBig {
		return
	}
	if ordinary {
		b.rest(b.now().Sub(a.bigFrom), b.freeLane)
		return
	}
	b.freeLane()
}

// freeLane lets the next big request in.
func (b *budget) freeLane() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bigs--
	close(b.bigFreed)
	b.bigFreed = make(chan struct{})
}

// busy is the fault of a request whose charge for what the budget could
// not cover in time; outcome says what became of the call.
func (b *budget) busy(what, outcome string) *Fault {
	return &Fault{Code: Unavailable, Message: fmt.Sprintf(
		"server busy: %s would take the memory in flight past its limit of %d bytes for more than %v; %s",
		what, b.total, b.wait, outcome)}
}

// request is what the server knows of a request besides its params: its
// account and what its caller presented, in one context value.
type request struct {
	acct   account
	caller Presented
	header http.Header
}

type requestKey struct{}

func withRequest(ctx context.Context, r *request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// accountFrom returns the request's account, or one on an unlimited
// budget for a handler called without a server (tests).
func accountFrom(ctx context.Context) *account {
	if r, ok := ctx.Value(requestKey{}).(*request); ok {
		return &r.acct
	}
	return &account{b: newBudget(1<<62, 0)}
}

// RequestHeader returns the value of the HTTP header name of the request
// a handler serves ("" if it has none, or if the handler was called
// without a server): for what a client sends with every call rather than
// in the params.
func RequestHeader(ctx context.Context, name string) string {
	if r, ok := ctx.Value(requestKey{}).(*request); ok {
		return r.header.Get(name)
	}
	return ""
}

// callerFrom returns what the request's caller presented.
func callerFrom(ctx context.Context) Presented {
	if r, ok := ctx.Value(requestKey{}).(*request); ok {
		return r.caller
	}
	return Presented{}
}
