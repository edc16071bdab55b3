package peer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/participant"
	"github.com/twopc/twopc/protocol"
)

// countingServer serves a store and counts the batch requests it gets.
func countingServer(t *testing.T) (*Client, *atomic.Int64, *participant.Store) {
	t.Helper()
	s := newStore(t)
	srv := rpc.NewServer(rpc.DefaultLimits(), nil)
	Register(srv, s)
	var n atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	c := NewClient(hs.URL+"/RPC2", nil, 1)
	c.writes.linger = time.Hour // only a prepare or Flush can send a commit
	return c, &n, s
}

// waitQueued waits until n calls wait in c's write queue.
func waitQueued(c *Client, n int) {
	for {
		c.writes.mu.Lock()
		queued := len(c.writes.queue)
		c.writes.mu.Unlock()
		if queued == n {
			return
		}
	}
}

// A commit waits for the next prepare and travels with it: one request,
// one SQLite transaction for both.
func TestLazyCommitRidesWithNextPrepare(t *testing.T) {
	c, requests, s := countingServer(t)
	if v, err := c.Prepare(ctx, "1.1", put("a", "1")); err != nil || v.Kind != protocol.VoteYes {
		t.Fatal(v, err)
	}
	batches := s.Stats().Batches
	committed := make(chan error, 1)
	go func() { committed <- c.Commit(ctx, "1.1") }()
	waitQueued(c, 1) // the commit
	if v, err := c.Prepare(ctx, "1.2", put("b", "2")); err != nil || v.Kind != protocol.VoteYes {
		t.Fatal(v, err)
	}
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	if got := requests.Load(); got != 2 {
		t.Fatalf("%d requests, want 2 (the commit rides with the second prepare)", got)
	}
	if got := s.Stats().Batches - batches; got != 1 {
		t.Fatalf("commit and prepare took %d SQLite transactions, want 1", got)
	}
}

// Flush sends a waiting commit at once.
func TestFlushSendsLazyCommit(t *testing.T) {
	c, _, s := countingServer(t)
	if v, err := c.Prepare(ctx, "1.1", put("a", "1")); err != nil || v.Kind != protocol.VoteYes {
		t.Fatal(v, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := c.Commit(ctx, "1.1"); err != nil {
			t.Error(err)
		}
	})
	waitQueued(c, 1)
	c.Flush()
	wg.Wait()
	if r := mustRead(t, s, "a"); !r.Entry.Found {
		t.Fatal("flushed commit not applied")
	}
}

// OnPrepares hears of each request carrying a prepare as it leaves, and
// of no other: a commit sent alone (Flush) is not one.
func TestOnPreparesHearsRequestsWithPrepares(t *testing.T) {
	c, requests, _ := countingServer(t)
	var heard atomic.Int64
	c.OnPrepares(func() { heard.Add(1) })
	for i, key := range []string{"a", "b"} {
		id := fmt.Sprintf("1.%d", i+1)
		if v, err := c.Prepare(ctx, id, put(key, "1")); err != nil || v.Kind != protocol.VoteYes {
			t.Fatal(v, err)
		}
		if got := heard.Load(); got != int64(i+1) {
			t.Fatalf("after %d prepares, OnPrepares heard %d requests", i+1, got)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := c.Commit(ctx, id); err != nil {
				t.Error(err)
			}
		})
		waitQueued(c, 1) // the commit, then send it alone
		c.Flush()
		wg.Wait()
	}
	if got, sent := heard.Load(), requests.Load(); got != 2 || sent != 4 {
		t.Fatalf("OnPrepares heard %d of %d requests, want the 2 with a prepare", got, sent)
	}
}

// A commit queued while a request is in flight does not go out alone when
// that request returns (the next prepare would then wait behind it): it
// waits for the next prepare, lingering from when the participant is free.
func TestLazyCommitWaitsPastInflightRequest(t *testing.T) {
	s := newStore(t)
	srv := rpc.NewServer(rpc.DefaultLimits(), nil)
	Register(srv, s)
	var requests atomic.Int64
	arrived, release := make(chan struct{}), make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 2 { // hold the second request until told
			close(arrived)
			<-release
		}
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	c := NewClient(hs.URL+"/RPC2", nil, 1)
	c.writes.linger = time.Hour
	state := func() (queued, inflight int) {
		c.writes.mu.Lock()
		defer c.writes.mu.Unlock()
		return len(c.writes.queue), c.writes.inflight
	}

	if v, err := c.Prepare(ctx, "1.1", put("a", "1")); err != nil || v.Kind != protocol.VoteYes {
		t.Fatal(v, err)
	}
	second := make(chan error, 1)
	go func() { _, err := c.Prepare(ctx, "1.2", put("b", "2")); second <- err }()
	<-arrived
	committed := make(chan error, 1)
	go func() { committed <- c.Commit(ctx, "1.1") }()
	for q, _ := state(); q != 1; q, _ = state() { // the commit is queued
	}
	close(release)
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	for _, n := state(); n != 0; _, n = state() { // the sender has stopped
	}
	if q, _ := state(); q != 1 || requests.Load() != 2 {
		t.Fatalf("after the in-flight request: %d queued, %d requests; want the commit still queued, 2 requests", q, requests.Load())
	}
	if v, err := c.Prepare(ctx, "1.3", put("c", "3")); err != nil || v.Kind != protocol.VoteYes {
		t.Fatal(v, err)
	}
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	if got := requests.Load(); got != 3 {
		t.Fatalf("%d requests, want 3 (the commit rides with the third prepare)", got)
	}
}

// Lazy calls wait about twice the usual time from the participant's
// being free to the next eager call, within bounds; when eager calls come
// further apart than the bound, they wait the least.
func TestLingerFollowsTheLoad(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct{ idle, want time.Duration }{
		{0, ms},           // no load seen yet
		{ms / 4, ms},      // busy: the least
		{2 * ms, 4 * ms},  // serial load on a slow disk
		{7 * ms, 10 * ms}, // bounded
		{11 * ms, ms},     // light load: waiting would meet nothing
		{time.Hour, ms},   // (sawIdleLocked never lets it get here)
	} {
		b := &batcher{linger: ms, maxLinger: 10 * ms, idle: c.idle}
		if got := b.lingerLocked(); got != c.want {
			t.Errorf("idle %v: linger %v, want %v", c.idle, got, c.want)
		}
	}
	b := &batcher{linger: ms, maxLinger: 10 * ms}
	b.sawIdleLocked(time.Minute) // a pause counts as 20 ms
	if b.idle != 20*ms/8 {
		t.Errorf("after a pause: average %v, want %v", b.idle, 20*ms/8)
	}
}

// Asynchronous calls get their answer once: the reply, or, if the
// participant has not answered by the call's deadline, DeadlineExceeded;
// whether the call was in flight or still queued behind one that was.
// A reply that comes after the deadline is dropped.
func TestAsyncCallsRunOutAtTheirDeadline(t *testing.T) {
	s := newStore(t)
	srv := rpc.NewServer(rpc.DefaultLimits(), nil)
	Register(srv, s)
	var requests atomic.Int64
	release := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 2 { // hold the second request until told
			<-release
		}
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	c := NewClient(hs.URL+"/RPC2", nil, 1)

	type answer struct {
		r protocol.CallResult
		n int
	}
	answers := make(chan answer, 8)
	var calls [4]atomic.Int64
	goCall := func(i int, call protocol.Call, deadline time.Time) {
		c.Go(call, deadline, func(r protocol.CallResult) { answers <- answer{r, int(calls[i].Add(1))} })
	}
	far := time.Now().Add(time.Hour)
	goCall(0, protocol.Call{Kind: protocol.MsgPrepare, TxID: "1.1", Txn: put("a", "1")}, far)
	if a := <-answers; a.r.Err != nil || a.r.Vote.Kind != protocol.VoteYes {
		t.Fatalf("first prepare: %+v", a.r)
	}
	soon := time.Now().Add(50 * time.Millisecond)
	goCall(1, protocol.Call{Kind: protocol.MsgPrepare, TxID: "1.2", Txn: put("b", "2")}, soon) // held in flight
	for requests.Load() != 2 {
		time.Sleep(time.Millisecond)
	}
	goCall(2, protocol.Call{Kind: protocol.MsgPrepare, TxID: "1.3", Txn: put("c", "3")}, soon) // queued behind it
	goCall(3, protocol.Call{Kind: protocol.MsgPrepare, TxID: "1.4", Txn: put("d", "4")}, far)  // queued, in time
	for range 2 {
		a := <-answers
		if !errors.Is(a.r.Err, context.DeadlineExceeded) {
			t.Fatalf("a call past its deadline got %+v", a.r)
		}
	}
	if time.Now().Before(soon) {
		t.Fatal("answered before the deadline")
	}
	close(release)
	if a := <-answers; a.r.Err != nil || a.r.Vote.Kind != protocol.VoteYes {
		t.Fatalf("prepare in time: %+v", a.r)
	}
	if n := calls[3].Load(); n != 1 {
		t.Fatalf("the call in time was answered %d times", n)
	}
	// The held request's reply (1.2) came after its deadline: dropped.
	time.Sleep(20 * time.Millisecond)
	for i := range calls {
		if n := calls[i].Load(); n != 1 {
			t.Fatalf("call %d answered %d times, want once", i, n)
		}
	}
	c.writes.mu.Lock()
	defer c.writes.mu.Unlock()
	if len(c.writes.queue) != 0 || len(c.writes.flying) != 0 || c.writes.eager != 0 {
		t.Fatalf("left behind: %d queued, %d in flight, %d eager", len(c.writes.queue), len(c.writes.flying), c.writes.eager)
	}
}

// senders counts c's write senders, busy and waiting.
func senders(c *Client) (busy, waiting int) {
	c.writes.mu.Lock()
	defer c.writes.mu.Unlock()
	return c.writes.inflight, c.writes.waiting
}

// waitSenders waits until c's write senders are busy and waiting, or
// fails after a minute (a guard, not a measure).
func waitSenders(t *testing.T, c *Client, busy, waiting int) {
	t.Helper()
	guard := time.Now().Add(time.Minute)
	for {
		b, w := senders(c)
		if b == busy && w == waiting {
			return
		}
		if time.Now().After(guard) {
			t.Fatalf("write senders: %d busy, %d waiting; want %d and %d", b, w, busy, waiting)
		}
		runtime.Gosched()
	}
}

// A sender waits for the next request instead of ending: serial calls
// reuse one, rather than start a goroutine each.
func TestSenderWaitsForTheNextCall(t *testing.T) {
	c, _, _ := countingServer(t)
	c.writes.senderIdle = time.Hour
	for i := range 50 {
		if v, err := c.Prepare(ctx, fmt.Sprintf("1.%d", i), put(fmt.Sprintf("k%d", i), "v")); err != nil || v.Kind != protocol.VoteYes {
			t.Fatal(v, err)
		}
		waitSenders(t, c, 0, 1)
	}
}

// Senders that end as soon as they wait, while calls keep coming from
// many goroutines: every call is answered (none is left to a sender on
// its way out), and no sender stays.
func TestSendersEndWhenIdle(t *testing.T) {
	c, _, _ := countingServer(t)
	c.writes.senderIdle = time.Nanosecond
	callCtx, cancel := context.WithTimeout(ctx, time.Minute) // a lost call fails, not hangs
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				id := fmt.Sprintf("%d.%d", g+1, i)
				v, err := c.Prepare(callCtx, id, put("k"+id, "v"))
				if err == nil && v.Kind != protocol.VoteYes {
					err = fmt.Errorf("vote %+v", v)
				}
				if err != nil {
					errs <- fmt.Errorf("prepare %s: %w", id, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitSenders(t, c, 0, 0)
}

// A call that comes as a sender's wait runs out, handed to that sender
// before it could end, is still sent: by that sender, which must see it
// was handed work.
func TestCallHandedToAnEndingSender(t *testing.T) {
	c, _, _ := countingServer(t)
	c.writes.senderIdle = time.Nanosecond
	late := make(chan error, 1)
	var once sync.Once
	c.writes.senderEnding = func() {
		once.Do(func() {
			go func() {
				callCtx, cancel := context.WithTimeout(ctx, time.Minute) // lost, it fails
				defer cancel()
				_, err := c.Prepare(callCtx, "1.2", put("b", "v"))
				late <- err
			}()
			for { // until the call is handed to this sender
				c.writes.mu.Lock()
				handed := len(c.writes.wake) == 1
				c.writes.mu.Unlock()
				if handed {
					return
				}
				runtime.Gosched()
			}
		})
	}
	// The first call's sender waits a nanosecond after it; as it ends,
	// the hook hands it the second call.
	if v, err := c.Prepare(ctx, "1.1", put("a", "v")); err != nil || v.Kind != protocol.VoteYes {
		t.Fatal(v, err)
	}
	if err := <-late; err != nil {
		t.Fatalf("the call handed to an ending sender: %v", err)
	}
	waitSenders(t, c, 0, 0)
}
