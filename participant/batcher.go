package participant

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twopc/twopc/internal/rpc"
)

// batcher sends calls to a participant's batch method. While a request is
// in flight (up to depth of them), new calls queue, and the next request
// carries all of them: under load one HTTP round trip and one SQLite
// commit serve many transactions, while a lone call still goes out at
// once. The mutex guards only the queue, never I/O.
type batcher struct {
	rpc      *rpc.Client
	depth    int
	maxBytes int // rough cap on the raw size of one request

	mu       sync.Mutex
	queue    []*pending
	inflight int
}

type pending struct {
	call     Call
	deadline time.Time
	reply    Reply
	done     chan struct{}
}

// do queues c and waits for its reply or for ctx to end. If ctx ends
// first, the call may still take effect, as with any lost reply.
func (b *batcher) do(ctx context.Context, c Call) Reply {
	p := &pending{call: c, done: make(chan struct{})}
	p.deadline, _ = ctx.Deadline()
	b.mu.Lock()
	b.queue = append(b.queue, p)
	start := b.inflight < b.depth
	if start {
		b.inflight++
	}
	b.mu.Unlock()
	if start {
		go b.run()
	}
	select {
	case <-p.done:
		return p.reply
	case <-ctx.Done():
		return Reply{Err: ctx.Err()}
	}
}

// run sends what is queued until the queue is empty.
func (b *batcher) run() {
	for {
		b.mu.Lock()
		n, size := 0, 0
		for n < len(b.queue) && (n == 0 || size < b.maxBytes) {
			size += approxSize(b.queue[n].call)
			n++
		}
		batch := b.queue[:n:n]
		b.queue = b.queue[n:]
		if n == 0 {
			b.inflight--
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		b.send(batch)
	}
}

func approxSize(c Call) int {
	return 64 + len(c.TxID) + len(c.Key) + len(c.Write.Key) + len(c.Write.Value.Data)
}

func (b *batcher) send(batch []*pending) {
	calls := make([]any, len(batch))
	var deadline time.Time
	for i, p := range batch {
		calls[i] = encodeCall(p.call)
		if p.deadline.After(deadline) {
			deadline = p.deadline
		}
	}
	if deadline.IsZero() {
		deadline = time.Now().Add(30 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	res, err := b.rpc.Call(ctx, "batch", calls)
	cancel()
	replies, ok := res.([]any)
	if err == nil && (!ok || len(replies) != len(batch)) {
		err = fmt.Errorf("participant: batch of %d calls got a reply of %d", len(batch), len(replies))
	}
	for i, p := range batch {
		if err != nil {
			p.reply = Reply{Err: err}
		} else {
			p.reply = decodeReply(p.call, replies[i])
		}
		close(p.done)
	}
}
