package drill

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twopc/twopc/internal/rpc"
)

// load is N clients doing random operations over a small key space.
type load struct {
	url       string       // the coordinator's
	hc        *http.Client // nil: each client gets its own plain one
	clients   int
	keys      []string
	seed      uint64
	opTimeout time.Duration
	rec       *recorder

	nextClient  atomic.Int64 // client numbers, also for clients reborn after an Unknown
	unexpFaults atomic.Int64 // faults the README does not allow here
}

// run starts the clients and returns when ctx ends and every call in
// flight has returned.
func (l *load) run(ctx context.Context) {
	l.nextClient.Store(int64(l.clients))
	var wg sync.WaitGroup
	for c := range l.clients {
		wg.Go(func() { l.client(ctx, c) })
	}
	wg.Wait()
}

// client issues one call at a time. Each client has its own generator,
// seeded from the drill's seed, so the sequence of operations each client
// attempts is the same for a given seed.
func (l *load) client(ctx context.Context, id int) {
	rng := rand.New(rand.NewPCG(l.seed, uint64(id)))
	c := rpc.NewClient(l.url, l.hc)
	for n := 0; ctx.Err() == nil; n++ {
		op := Op{Client: id, Key: l.keys[rng.IntN(len(l.keys))]}
		switch r := rng.IntN(100); {
		case r < 45:
			op.Kind = Put
			// Unique per put, so that a read names the write it saw.
			op.Value = fmt.Sprintf("c%d.%d", id, n)
		case r < 85:
			op.Kind = Get
		default:
			op.Kind = Delete
		}
		l.do(c, &op)
		l.rec.op(op)
		switch op.Outcome {
		case Unknown:
			// The call may still be running somewhere: the same client
			// must not look sequential with it, so it gets a new number.
			id = int(l.nextClient.Add(1) - 1)
			fallthrough
		case Failed:
			// Back off a little so that a down coordinator is not hammered.
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(5+rng.IntN(20)) * time.Millisecond):
			}
		}
	}
}

// do makes the call and records its times and outcome in op. The call is
// not cut short when the drill's load phase ends: an operation that ended
// only because the drill stopped waiting would be Unknown for no reason.
func (l *load) do(c *rpc.Client, op *Op) {
	ctx, cancel := context.WithTimeout(context.Background(), l.opTimeout)
	defer cancel()
	op.Call = l.rec.now()
	var res any
	var err error
	switch op.Kind {
	case Put:
		res, err = c.Call(ctx, "put", op.Key, op.Value)
	case Get:
		res, err = c.Call(ctx, "get", op.Key)
	case Delete:
		res, err = c.Call(ctx, "delete", op.Key)
	}
	op.Return = l.rec.now()
	op.Outcome = OK
	var f *rpc.Fault
	switch {
	case err == nil:
		l.result(op, res)
	case errors.As(err, &f) && f.Code == rpc.NotFound && op.Kind == Get:
		op.Found = false
	default:
		var unexpected bool
		op.Outcome, unexpected = outcomeOf(err)
		op.Err = err.Error()
		if unexpected {
			// Not a documented answer to this call: count it, and assume
			// nothing about its effect.
			l.unexpFaults.Add(1)
			op.Err = "unexpected " + op.Err
		}
	}
}

// outcomeOf is the drill's one reading of a call that failed: what the
// API promises about its effect. Fault 2 (conflict) or 3 (unavailable),
// or a connection refused before any byte was sent: Failed, no effect.
// Any other fault is not a documented answer to put, get or delete: its
// outcome is Unknown and it is unexpected, which the drill reports as a
// violation of its own. Anything else (connection reset, timeout): the
// call may or may not have taken effect, Unknown.
func outcomeOf(err error) (o Outcome, unexpected bool) {
	var f *rpc.Fault
	switch {
	case errors.As(err, &f) && (f.Code == rpc.Conflict || f.Code == rpc.Unavailable):
		return Failed, false
	case errors.As(err, &f):
		return Unknown, true
	case refused(err):
		return Failed, false
	}
	return Unknown, false
}

// result reads a successful reply into op.
func (l *load) result(op *Op, res any) {
	switch op.Kind {
	case Get:
		s, ok := res.(string)
		if !ok {
			l.unexpFaults.Add(1)
			op.Outcome, op.Err = Unknown, fmt.Sprintf("unexpected reply %T to get", res)
			return
		}
		op.Found, op.Value = true, s
	case Delete:
		b, ok := res.(bool)
		if !ok {
			l.unexpFaults.Add(1)
			op.Outcome, op.Err = Unknown, fmt.Sprintf("unexpected reply %T to delete", res)
			return
		}
		op.Existed = b
	case Put:
		if res != true {
			l.unexpFaults.Add(1)
			op.Outcome, op.Err = Unknown, fmt.Sprintf("unexpected reply %v to put", res)
		}
	}
}

// refused reports whether the call failed to connect: then no byte of the
// request was sent and it cannot have had an effect. (net/http re-sends a
// request on a new connection only when nothing of it was written on the
// old one, so the error that reaches us is the last attempt's.)
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
