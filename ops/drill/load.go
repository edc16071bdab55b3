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
	// urls are the coordinators': any serves (followers forward to the
	// leader). A lose-follower changes them (setURLs); gen counts the
	// changes, and each client picks them up before its next call.
	urlsMu   sync.Mutex
	urls     []string
	gen      int
	hc       *http.Client // nil: each client gets its own plain one
	clients  int
	keys     []string
	groups   [][]string // the keys, cut into the groups transactions draw theirs from
	txnRatio float64    // share of operations that are transactions
	// gate, if set, is held shared by every call in flight, so that
	// whoever holds it alone makes a call that overlaps no other (bank.go).
	gate      *sync.RWMutex
	seed      uint64
	opTimeout time.Duration
	rec       *recorder

	// nextClient numbers clients reborn after an Unknown (and the bank's
	// first); it starts at clients, past the numbers of the first ones.
	nextClient  atomic.Int64
	unexpFaults atomic.Int64 // faults the README does not allow here
}

// run starts the clients and returns when ctx ends and every call in
// flight has returned.
func (l *load) run(ctx context.Context) { l.runClients(ctx, l.client) }

// runClients runs clients 0 to l.clients-1 until ctx ends and every call
// in flight has returned.
func (l *load) runClients(ctx context.Context, client func(ctx context.Context, id int)) {
	var wg sync.WaitGroup
	for c := range l.clients {
		wg.Go(func() { client(ctx, c) })
	}
	wg.Wait()
}

// client is one client's connection, number and generator. Each client
// has its own generator, seeded from the drill's seed, so the sequence of
// operations each client attempts is the same for a given seed.
type client struct {
	id  int // changes after a call of unknown outcome
	id0 int // the number it started with, which makes its values unique
	rng *rand.Rand
	// conns are one per coordinator; the client calls conns[cur], and
	// moves on to the next when that one does not answer.
	conns []*rpc.Client
	cur   int
	gen   int // of the load's URLs that conns were made for
	// seen is the last value and version the client read of each key,
	// so that its compares hold often enough for both branches to run.
	seen map[string]entry
}

// newClient makes client id, which starts at a coordinator of its own,
// so that the clients are spread over them all.
func (l *load) newClient(id int) *client {
	c := &client{id: id, id0: id, rng: rand.New(rand.NewPCG(l.seed, uint64(id))), gen: -1, seen: map[string]entry{}}
	l.refresh(c)
	return c
}

// setURLs changes the coordinators' URLs the clients call.
func (l *load) setURLs(urls []string) {
	l.urlsMu.Lock()
	defer l.urlsMu.Unlock()
	l.urls, l.gen = urls, l.gen+1
}

// refresh gives c a connection to each coordinator, if they changed
// since it last looked, and starts it at one of its own, so that the
// clients stay spread over them all.
func (l *load) refresh(c *client) {
	l.urlsMu.Lock()
	defer l.urlsMu.Unlock()
	if c.gen == l.gen {
		return
	}
	c.conns, c.gen = nil, l.gen
	for _, u := range l.urls {
		c.conns = append(c.conns, rpc.NewClient(u, l.hc))
	}
	c.cur = c.id0 % len(c.conns)
}

// client issues one call at a time until ctx ends.
func (l *load) client(ctx context.Context, id int) {
	c := l.newClient(id)
	for n := 0; ctx.Err() == nil; n++ {
		var op Op
		if c.rng.Float64() < l.txnRatio {
			op = Op{Kind: Transaction, Txn: c.drawTxn(l.groups[c.rng.IntN(len(l.groups))], n)}
		} else {
			op = Op{Key: l.keys[c.rng.IntN(len(l.keys))]}
			switch r := c.rng.IntN(100); {
			case r < 45:
				op.Kind = Put
				// Unique per put, so that a read names the write it saw.
				op.Value = fmt.Sprintf("c%d.%d", c.id0, n)
			case r < 85:
				op.Kind = Get
			default:
				op.Kind = Delete
			}
		}
		l.issue(ctx, c, &op)
		c.learn(op)
	}
}

// issue makes one call of client c, with the gate held shared, and
// deals with its outcome: one whose call failed or was lost backs off a
// little.
func (l *load) issue(ctx context.Context, c *client, op *Op) {
	if l.gate != nil {
		l.gate.RLock()
	}
	l.call(c, op)
	if l.gate != nil {
		l.gate.RUnlock()
	}
	if op.Outcome != OK {
		// Back off a little so that a down coordinator is not hammered.
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(5+c.rng.IntN(20)) * time.Millisecond):
		}
	}
}

// call makes one call of client c and records it. A client that lost a
// call continues under a new number: the call may still be running
// somewhere, and the same client must not look sequential with it. A
// client whose coordinator did not answer, or answered that it could
// not serve the call (fault 3 or 6), tries the next coordinator next
// time, as a client that knows them all would: one that is down, paused
// or cut off from the others may stay so for a while.
func (l *load) call(c *client, op *Op) {
	l.refresh(c)
	op.Client = c.id
	err := l.do(c.conns[c.cur], op)
	l.rec.op(*op)
	if op.Outcome == Unknown {
		c.id = int(l.nextClient.Add(1) - 1)
	}
	var f *rpc.Fault
	if err != nil && !(errors.As(err, &f) && (f.Code == rpc.Conflict || f.Code == rpc.NotFound)) {
		c.cur = (c.cur + 1) % len(c.conns)
	}
}

// do makes the call and records its times and outcome in op. The call is
// not cut short when the drill's load phase ends: an operation that ended
// only because the drill stopped waiting would be Unknown for no reason.
// It returns the call's error.
func (l *load) do(c *rpc.Client, op *Op) error {
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
	case Transaction:
		res, err = c.Call(ctx, "txn", op.Txn.params()...)
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
	return err
}

// outcomeOf is the drill's one reading of a call that failed: what the
// API promises about its effect. Fault 2 (conflict) or 3 (unavailable),
// or a connection refused before any byte was sent: Failed, no effect.
// Fault 6 (outcome unknown): Unknown, as documented. Any other fault is
// not a documented answer to the drill's calls (it sends no malformed or
// oversized ones): its outcome is Unknown and it is unexpected, which the
// drill reports as a violation of its own. Anything else (connection
// reset, timeout): the call may or may not have taken effect, Unknown.
func outcomeOf(err error) (o Outcome, unexpected bool) {
	var f *rpc.Fault
	switch {
	case errors.As(err, &f) && (f.Code == rpc.Conflict || f.Code == rpc.Unavailable):
		return Failed, false
	case errors.As(err, &f) && f.Code == rpc.OutcomeUnknown:
		return Unknown, false
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
	case Transaction:
		if err := op.Txn.readReply(res); err != nil {
			l.unexpFaults.Add(1)
			op.Txn.Succeeded, op.Txn.Results = false, nil
			op.Outcome, op.Err = Unknown, "unexpected "+err.Error()
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
