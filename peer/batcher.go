package peer

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/protocol"
)

// batcher sends calls to a participant's batch method. While a request is
// in flight (up to depth of them), new calls queue, and the next request
// carries all of them: under load one HTTP round trip and one SQLite
// commit serve many transactions, while a lone call still goes out at
// once. The mutex guards only the queue, never I/O.
//
// Lazy calls (commits and aborts, whose client has had its answer) do not
// start a request: they wait, counted from when the participant is free,
// for one that is going anyway, so that under serial load commit N shares
// its request and its fsync with a later prepare. Flush sends them at once.
//
// How long they wait follows the load (lingerLocked): the time from the
// participant's being free to the next eager call is about a client's
// round trip plus whatever the other participants and the log still had
// to do for the last transaction, which a slow or busy disk stretches
// past a fixed millisecond; then every commit went alone, with an fsync
// of its own at every participant.
//
// A call waits for its answer in one of two ways: do blocks its caller
// (with ctx), goAsync hands the answer to a function, with no goroutine
// waiting on it. Async calls run out at their deadline on one timer per
// batcher (watch), armed for the earliest deadline outstanding: a call
// is answered once, by its reply or by its deadline, whichever is first.
type batcher struct {
	rpc        *rpc.Client
	depth      int
	maxBytes   int           // rough cap on the raw size of one request
	linger     time.Duration // shortest wait of a lazy call
	maxLinger  time.Duration // longest wait of a lazy call, if longer than linger
	senderIdle time.Duration // how long a sender waits for work; 0: defaultSenderIdle
	// senderEnding, set only by tests, runs as a sender's wait runs out,
	// before it takes the lock to end.
	senderEnding func()

	mu       sync.Mutex
	queue    []*pending
	eager    int  // calls in queue that are not lazy
	forced   bool // flush asked: send lazy calls too, until the queue empties
	inflight int
	waiting  int           // senders idle in wait, not yet handed work
	wake     chan struct{} // hands work to an idle sender (made on first use)
	timer    *time.Timer   // armed while lazy calls wait
	freeAt   time.Time     // when the last request in flight returned
	idle     time.Duration // moving average of freeAt to the next eager call
	flying   [][]*pending  // the batches of the requests in flight
	watch    *time.Timer   // fires at watchAt: async calls may have run out
	watchAt  time.Time     // zero: watch not armed

	onPrepares atomic.Pointer[func()] // see Client.OnPrepares
}

type pending struct {
	call     protocol.Call
	lazy     bool
	deadline time.Time // zero: none
	reply    protocol.CallResult
	done     chan struct{}             // closed once answered (do's)
	then     func(protocol.CallResult) // called once answered (goAsync's)
	answered bool                      // under mu, for async calls
}

// do queues c and waits for its reply or for ctx to end. If ctx ends
// first, the call may still take effect, as with any lost reply.
func (b *batcher) do(ctx context.Context, c protocol.Call, lazy bool) protocol.CallResult {
	p := &pending{call: c, lazy: lazy, done: make(chan struct{})}
	p.deadline, _ = ctx.Deadline()
	b.mu.Lock()
	b.enqueueLocked(p)
	b.mu.Unlock()
	select {
	case <-p.done:
		return p.reply
	case <-ctx.Done():
		return protocol.CallResult{Err: ctx.Err()}
	}
}

// goAsync queues c and returns; then gets its result once, from another
// goroutine: the reply, or context.DeadlineExceeded at deadline (zero:
// none) if no reply came by then. As with do, a call that ran out may
// still take effect.
func (b *batcher) goAsync(c protocol.Call, lazy bool, deadline time.Time, then func(protocol.CallResult)) {
	p := &pending{call: c, lazy: lazy, deadline: deadline, then: then}
	b.mu.Lock()
	b.enqueueLocked(p)
	if !deadline.IsZero() && (b.watchAt.IsZero() || deadline.Before(b.watchAt)) {
		b.watchLocked(deadline)
	}
	b.mu.Unlock()
}

func (b *batcher) enqueueLocked(p *pending) {
	b.queue = append(b.queue, p)
	if !p.lazy {
		if b.inflight == 0 && !b.freeAt.IsZero() {
			b.sawIdleLocked(time.Since(b.freeAt))
		}
		b.eager++
		b.startLocked()
	} else if b.inflight == 0 && b.timer == nil {
		b.timer = time.AfterFunc(b.lingerLocked(), b.flush)
	}
}

// watchLocked arms the watch for at.
func (b *batcher) watchLocked(at time.Time) {
	b.watchAt = at
	if b.watch == nil {
		b.watch = time.AfterFunc(time.Until(at), b.expire)
		return
	}
	b.watch.Reset(time.Until(at))
}

// expire answers the async calls whose deadline has passed, queued or in
// flight, and arms the watch for the next deadline. A call in flight
// stays in its request, whose reply will find it answered.
func (b *batcher) expire() {
	var out []*pending
	b.mu.Lock()
	now := time.Now()
	var next time.Time
	check := func(p *pending) (expired bool) {
		if p.then == nil || p.answered || p.deadline.IsZero() {
			return false
		}
		if !p.deadline.After(now) {
			p.answered = true
			out = append(out, p)
			return true
		}
		if next.IsZero() || p.deadline.Before(next) {
			next = p.deadline
		}
		return false
	}
	kept := b.queue[:0]
	for _, p := range b.queue {
		switch {
		case !check(p):
			kept = append(kept, p)
		case !p.lazy:
			b.eager--
		}
	}
	clear(b.queue[len(kept):])
	b.queue = kept
	for _, batch := range b.flying {
		for _, p := range batch {
			check(p)
		}
	}
	b.watchAt = time.Time{}
	if !next.IsZero() {
		b.watchLocked(next)
	}
	b.mu.Unlock()
	for _, p := range out {
		p.then(protocol.CallResult{Err: context.DeadlineExceeded})
	}
}

// flush sends whatever is queued now.
func (b *batcher) flush() {
	b.mu.Lock()
	b.forced = true
	b.startLocked()
	b.mu.Unlock()
}

// startLocked starts a sender if there is work and room for one.
func (b *batcher) startLocked() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if len(b.queue) > 0 && b.inflight < b.depth {
		b.inflight++
		if b.waiting > 0 {
			b.waiting--
			b.wake <- struct{}{} // room for every waiting sender
			return
		}
		if b.wake == nil {
			b.wake = make(chan struct{}, b.depth)
		}
		go b.sender()
	}
}

// defaultSenderIdle is how long a sender waits for more work before it
// ends, unless batcher.senderIdle says otherwise (tests).
const defaultSenderIdle = time.Second

// sender runs batches until no work comes for a while. One that stays
// keeps its grown stack: a new goroutine for each request (under serial
// load, one for every put) grew its stack again through the HTTP client,
// which was 6% of the coordinator's CPU.
func (b *batcher) sender() {
	wait := b.senderIdle
	if wait == 0 {
		wait = defaultSenderIdle
	}
	idle := time.NewTimer(wait)
	defer idle.Stop()
	for {
		b.run()
		idle.Reset(wait)
		select {
		case <-b.wake:
			continue
		case <-idle.C:
		}
		if b.senderEnding != nil {
			b.senderEnding()
		}
		b.mu.Lock()
		// The waiting senders are b.waiting plus the tokens in b.wake; a
		// token left means work for one of them, whichever takes it.
		select {
		case <-b.wake:
			b.mu.Unlock()
			continue
		default:
		}
		b.waiting--
		b.mu.Unlock()
		return
	}
}

// run sends what is queued until the queue is empty or holds only lazy
// calls, which then linger; its sender then waits for more (b.waiting).
func (b *batcher) run() {
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.forced = false
		}
		if len(b.queue) > 0 && b.eager == 0 && !b.forced {
			b.inflight--
			b.freeAt = time.Now()
			if b.timer == nil {
				b.timer = time.AfterFunc(b.lingerLocked(), b.flush)
			}
			b.waiting++
			b.mu.Unlock()
			return
		}
		n, size := 0, 0
		for n < len(b.queue) && (n == 0 || size < b.maxBytes) {
			size += approxSize(b.queue[n].call)
			n++
		}
		// Copy out and clear the slots, so that sent calls (values up to
		// the value limit) are not kept alive by the queue's array.
		batch := slices.Clone(b.queue[:n])
		prepares := false
		for _, p := range batch {
			if !p.lazy {
				b.eager--
			}
			prepares = prepares || p.call.Kind == protocol.MsgPrepare
		}
		clear(b.queue[:n])
		b.queue = b.queue[n:]
		if n == 0 {
			b.inflight--
			b.freeAt = time.Now()
			b.waiting++
			b.mu.Unlock()
			return
		}
		b.flying = append(b.flying, batch)
		b.mu.Unlock()
		if f := b.onPrepares.Load(); f != nil && prepares {
			(*f)()
		}
		b.send(batch)
	}
}

// sawIdleLocked adds one wait, from the participant's being free to the
// next eager call, to the moving average. A long one (a pause in the
// load) counts as twice maxLinger, so that the average comes back within
// a few calls when the load resumes.
func (b *batcher) sawIdleLocked(d time.Duration) {
	b.idle += (min(d, 2*b.maxLinger) - b.idle) / 8
}

// lingerLocked is how long lazy calls wait now: twice the usual wait for
// the next eager call, so that most of them meet it, within [linger,
// maxLinger]; but only linger when eager calls come further apart than
// maxLinger (light load), since waiting longer would rarely meet one.
func (b *batcher) lingerLocked() time.Duration {
	if w := 2 * b.idle; w > b.linger && b.idle <= b.maxLinger {
		return min(w, b.maxLinger)
	}
	return b.linger
}

// writers hold batches being encoded.
var writers = sync.Pool{New: func() any { return new(rpc.ValueWriter) }}

// approxSize is a rough size of c on the wire, to cap a request's.
func approxSize(c protocol.Call) int {
	n := 64 + len(c.TxID)
	for _, k := range c.Keys {
		n += 16 + len(k)
	}
	if t := c.Txn; t != nil {
		for _, cmp := range t.Compares {
			n += 64 + len(cmp.Key) + len(cmp.Value.Data)
		}
		for _, ops := range [][]protocol.Op{t.Success, t.Failure} {
			for _, o := range ops {
				n += 48 + len(o.Key) + len(o.Value.Data)
			}
		}
	}
	return n
}

func (b *batcher) send(batch []*pending) {
	w := writers.Get().(*rpc.ValueWriter)
	w.Reset()
	w.OpenArray()
	var deadline time.Time
	for _, p := range batch {
		appendCall(w, p.call)
		if p.deadline.After(deadline) {
			deadline = p.deadline
		}
	}
	w.CloseArray()
	if deadline.IsZero() {
		deadline = time.Now().Add(30 * time.Second)
	}
	var res any
	read, results := false, make([]protocol.CallResult, len(batch))
	err := w.Err()
	if err == nil {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		res, read, err = callReading(ctx, b.rpc, func(r *rpc.ValueReader) bool {
			return readReplies(r, batch, results)
		}, "batch", w.Raw())
		cancel()
	}
	writers.Put(w)
	replies, ok := res.([]any)
	if err == nil && !read && (!ok || len(replies) != len(batch)) {
		err = fmt.Errorf("peer: batch of %d calls got a reply of %d", len(batch), len(replies))
	}
	var async []*pending
	b.mu.Lock()
	b.flying = slices.DeleteFunc(b.flying, func(f []*pending) bool { return &f[0] == &batch[0] })
	for i, p := range batch {
		if p.answered {
			continue
		}
		p.answered = true
		switch {
		case err != nil:
			p.reply = protocol.CallResult{Err: err}
		case read:
			p.reply = results[i]
		default:
			p.reply = decodeResult(p.call, replies[i])
		}
		if p.then != nil {
			async = append(async, p)
		}
	}
	b.mu.Unlock()
	for _, p := range batch {
		if p.done != nil {
			close(p.done)
		}
	}
	if len(async) > 0 {
		// Off the sender's goroutine, which goes on with the next request;
		// one goroutine for the batch, not one per call.
		go func() {
			for _, p := range async {
				p.then(p.reply)
			}
		}()
	}
}
