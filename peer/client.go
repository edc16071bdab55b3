package peer

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/protocol"
)

// Client calls a participant over XML-RPC. It is safe for concurrent use:
// concurrent prepares, commits and aborts travel together in batch
// requests, and so do concurrent reads (see batcher).
type Client struct {
	rpc     *rpc.Client
	writes  *batcher
	reads   *batcher
	traffic *rpc.Traffic
}

// Batching depth: requests in flight per participant. Writes keep one:
// everything queued behind it goes in the next request, so batches (and
// the participant's SQLite commits) are as large as the load makes them,
// and calls reach the participant in the order they were made. Measured
// with 64 clients: depth 1 gave 1.1-1.4x the puts/s of depth 2, and 4 was
// worse still. Reads wait on no fsync, so two overlap.
const (
	writeDepth = 1
	readDepth  = 2
)

// How long a commit or abort may wait for a request to ride on (see
// batcher): at least about one client round trip plus a prepare; under
// serial load up to twice the usual wait for the next prepare, bounded
// so that a key stays locked for a lingering commit no longer than this.
const (
	commitLinger    = time.Millisecond
	maxCommitLinger = 10 * time.Millisecond
)

// NewClient returns a client of the participant at url for a coordinator
// of term (see TermHeader); hc may be nil. Term 0 sends none: enough for
// an operator's reads (read, digest, prepared, scan), while a
// participant refuses prepares, commits, aborts and installs without one.
func NewClient(url string, hc *http.Client, term uint64) *Client {
	hc, t := rpc.Metered(hc)
	c := rpc.NewClient(url, hc).OwnEncoder() // batches are the hot path: see OwnEncoder
	if term != 0 {
		c = c.WithHeader(TermHeader, strconv.FormatUint(term, 10))
	}
	return &Client{
		rpc:     c,
		traffic: t,
		writes:  &batcher{rpc: c, depth: writeDepth, maxBytes: 1 << 20, linger: commitLinger, maxLinger: maxCommitLinger},
		reads:   &batcher{rpc: c, depth: readDepth, maxBytes: 1 << 20},
	}
}

// Prepare asks the participant to run t and vote.
func (c *Client) Prepare(ctx context.Context, txid string, t *protocol.Txn) (protocol.Vote, error) {
	r := c.writes.do(ctx, protocol.Call{Kind: protocol.MsgPrepare, TxID: txid, Txn: t}, false)
	return r.Vote, r.Err
}

// Commit may wait up to commitLinger to share a request (see batcher).
func (c *Client) Commit(ctx context.Context, txid string) error {
	return c.writes.do(ctx, protocol.Call{Kind: protocol.MsgCommit, TxID: txid}, true).Err
}

// Abort may wait up to commitLinger to share a request (see batcher).
func (c *Client) Abort(ctx context.Context, txid string) error {
	return c.writes.do(ctx, protocol.Call{Kind: protocol.MsgAbort, TxID: txid}, true).Err
}

// Go sends call (a prepare, commit, abort or read) as the methods above
// do, without a goroutine waiting on it: done gets the result once, from
// another goroutine, after Go has returned: the reply, or
// context.DeadlineExceeded at deadline (zero: none) if none came by then.
// It implements the coordinator's asynchronous transport.
func (c *Client) Go(call protocol.Call, deadline time.Time, done func(protocol.CallResult)) {
	switch call.Kind {
	case protocol.MsgPrepare:
		c.writes.goAsync(call, false, deadline, done)
	case protocol.MsgCommit, protocol.MsgAbort:
		c.writes.goAsync(call, true, deadline, done)
	case protocol.MsgRead:
		c.reads.goAsync(call, false, deadline, done)
	default:
		go done(protocol.CallResult{Err: fmt.Errorf("peer: no asynchronous call of kind %d", call.Kind)})
	}
}

// Read returns the state of keys at the participant, from one snapshot.
func (c *Client) Read(ctx context.Context, keys ...string) ([]protocol.KeyState, error) {
	r := c.reads.do(ctx, protocol.Call{Kind: protocol.MsgRead, Keys: keys}, false)
	return r.Keys, r.Err
}

// Traffic returns the XML bytes sent to and received from the
// participant so far (request and response bodies).
func (c *Client) Traffic() (sent, received int64) {
	return c.traffic.Bytes()
}

// OnPrepares has f called each time a request carrying prepares is
// about to leave, from the goroutine that sends it. The coordinator ends
// the linger of its STAGED records then: their fsync overlaps the
// round trip, and one serves every transaction of the request.
func (c *Client) OnPrepares(f func()) { c.writes.onPrepares.Store(&f) }

// Flush sends waiting commits and aborts now: the coordinator calls it
// when a write waits for a key that a lingering commit still holds.
func (c *Client) Flush() { c.writes.flush() }

// PreparedTxs lists the transactions the participant holds prepared.
func (c *Client) PreparedTxs(ctx context.Context) ([]protocol.PreparedTx, error) {
	res, err := call(ctx, c.rpc, "prepared")
	if err != nil {
		return nil, err
	}
	list, ok := res.([]any)
	if !ok {
		return nil, fmt.Errorf("peer: prepared: want array, got %T", res)
	}
	out := make([]protocol.PreparedTx, 0, len(list))
	for _, e := range list {
		m, err := asStruct(e)
		if err != nil {
			return nil, err
		}
		var p protocol.PreparedTx
		p.TxID, _ = m["txid"].(string)
		keys, _ := m["keys"].([]any)
		for _, k := range keys {
			if s, ok := k.(string); ok {
				p.Keys = append(p.Keys, s)
			}
		}
		if s, _ := m["since"].(string); s != "" {
			p.Since, _ = time.Parse(time.RFC3339Nano, s)
		}
		out = append(out, p)
	}
	return out, nil
}

// Digest fetches the participant's digest.
func (c *Client) Digest(ctx context.Context) (protocol.Digest, error) {
	res, err := call(ctx, c.rpc, "digest")
	if err != nil {
		return protocol.Digest{}, err
	}
	m, err := asStruct(res)
	if err != nil {
		return protocol.Digest{}, err
	}
	var d protocol.Digest
	d.Keys, _ = m["keys"].(int64)
	d.Hash, _ = m["hash"].(string)
	d.Prepared, _ = m["prepared"].(int64)
	return d, nil
}

// Stats fetches the participant's counters (see participant.Stats).
func (c *Client) Stats(ctx context.Context) (map[string]int64, error) {
	res, err := call(ctx, c.rpc, "stats")
	if err != nil {
		return nil, err
	}
	m, err := asStruct(res)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for k, v := range m {
		if n, ok := v.(int64); ok {
			out[k] = n
		}
	}
	return out, nil
}

func asStruct(v any) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("peer: want a struct in the reply, got %T", v)
	}
	return m, nil
}

// OutcomeClient asks a coordinator for transaction outcomes over XML-RPC
// (its tx.outcome method). It implements participant.Resolver.
type OutcomeClient struct {
	rpc *rpc.Client
}

// NewOutcomeClient returns a resolver for the coordinator at url.
func NewOutcomeClient(url string, hc *http.Client) *OutcomeClient {
	return &OutcomeClient{rpc: rpc.NewClient(url, hc)}
}

// Outcome asks whether txid committed.
func (c *OutcomeClient) Outcome(ctx context.Context, txid string) (bool, error) {
	res, err := c.rpc.Call(ctx, "tx.outcome", txid)
	if err != nil {
		return false, err
	}
	switch res {
	case "commit":
		return true, nil
	case "abort":
		return false, nil
	}
	return false, fmt.Errorf("peer: tx.outcome: unexpected answer %v", res)
}
