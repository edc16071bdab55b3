package peer

import (
	"context"
	"slices"
	"time"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/protocol"
)

// Backend is what a participant serves: participant.Store.
type Backend interface {
	Batch(ctx context.Context, calls []protocol.Call) []protocol.CallResult
	Read(ctx context.Context, keys ...string) ([]protocol.KeyState, error)
	PreparedTxs(ctx context.Context) ([]protocol.PreparedTx, error)
	Digest(ctx context.Context) (protocol.Digest, error)
	Scan(ctx context.Context, after string, limit int) ([]protocol.KeyState, bool, error)
	Install(ctx context.Context, in *protocol.Install) error
	// Counters returns the participant's counters by name (stats).
	Counters() map[string]int64
}

// The participant's XML-RPC methods. The coordinator calls batch (every
// prepare, commit, abort and read; format in wire.go) and prepared;
// operators and drills call read, digest and stats:
//
//	read(key) -> {found bool, value, version int, pending txid|""}
//	digest() -> {keys int, hash string, prepared int}
//	stats() -> {batches, prepares, commits, aborts, prepared,
//	            stale_term_refusals, term int}
//	prepared() -> [{txid, keys [string], since "RFC 3339"|""}]
//
// and a coordinator catching a participant up calls scan on a replica in
// the write set and install on the one catching up (format in wire.go).
//
// Every method but stats (a counter, no state) is fenced: its request's
// TermHeader goes to the store with the call, a lower term than the
// participant has seen is refused with fault rpc.StaleTerm (a batch
// whole), and a batch with a prepare, commit or abort, or an install,
// without the header is refused with rpc.InvalidRequest: only an
// operator's reads may come without a term.

// fenced serves h with the request's term in its context (see
// TermHeader), which must carry one if the method changes data, and
// sends a stale-term refusal as fault rpc.StaleTerm.
func fenced(method string, changesData bool, h rpc.Handler) rpc.Handler {
	return func(ctx context.Context, ps []any) (any, error) {
		ctx, err := termContext(ctx, method, changesData)
		if err != nil {
			return nil, err
		}
		res, err := h(ctx, ps)
		return res, faultOf(err)
	}
}

func changesData(c protocol.Call) bool { return c.Kind != protocol.MsgRead }

// Register adds the participant's methods to srv.
func Register(srv *rpc.Server, b Backend) {
	srv.Register(rpc.Method{
		Name:      "read",
		Help:      "read(key): the committed value and version of a key and, if it is prepared, the pending transaction, from one snapshot.",
		Signature: [][]string{{"struct", "string"}},
		Handler: fenced("read", false, func(ctx context.Context, ps []any) (any, error) {
			p, err := rpc.Strings(ps, "key")
			if err != nil {
				return nil, err
			}
			key := p[0]
			ks, err := b.Read(ctx, key)
			if err != nil {
				return nil, err
			}
			k := ks[0]
			return map[string]any{"found": k.Entry.Found, "value": wireValue(k.Entry.Value), "version": k.Entry.Version, "pending": k.Pending}, nil
		}),
	})
	srv.Register(rpc.Method{
		Name: "batch",
		Help: "Many prepare/commit/abort/read calls in one request (see peer/wire.go); " +
			"its writes share one SQLite transaction. Used by the coordinator.",
		Signature: [][]string{{"array", "array"}},
		ReadParam: readBatch,
		Handler: fenced("batch", false, func(ctx context.Context, ps []any) (any, error) {
			entries, results, calls, at, err := batchCalls(ps)
			if err != nil {
				return nil, err
			}
			if protocol.TermOf(ctx) == 0 && slices.ContainsFunc(calls, changesData) {
				return nil, rpc.Faultf(rpc.InvalidRequest, "a batch with a prepare, commit or abort must carry the coordinator's term in the %s header", TermHeader)
			}
			for j, r := range b.Batch(ctx, calls) {
				if isStaleTerm(r.Err) {
					return nil, r.Err // a request of a stale term is refused whole
				}
				if at != nil {
					j = at[j]
				}
				results[j] = r
			}
			// Written as it goes, not built as a tree (see appendCall). The
			// writer is the reply's own: the server encodes it after this
			// returns.
			w := new(rpc.ValueWriter)
			w.OpenArray()
			for i, r := range results {
				appendResult(w, entries[i], r)
			}
			w.CloseArray()
			if err := w.Err(); err != nil {
				return nil, err
			}
			return w.Raw(), nil
		}),
	})
	srv.Register(rpc.Method{
		Name:      "scan",
		Help:      "scan(after, limit): up to limit keys after `after` in key order, each with its committed and pending entries, and whether there are more. Used by the coordinator to catch a participant up.",
		Signature: [][]string{{"array", "string", "int"}},
		Handler: fenced("scan", false, func(ctx context.Context, ps []any) (any, error) {
			if err := rpc.Arity(ps, "after", "limit"); err != nil {
				return nil, err
			}
			after, err := rpc.String(ps, 0, "after")
			if err != nil {
				return nil, err
			}
			limit, ok := ps[1].(int64)
			if !ok || limit <= 0 || limit > MaxScan {
				return nil, rpc.Faultf(rpc.InvalidParams, "param 2 (limit): want an int from 1 to %d, got %v", MaxScan, ps[1])
			}
			states, more, err := b.Scan(ctx, after, int(limit))
			if err != nil {
				return nil, err
			}
			return encodeScan(states, more), nil
		}),
	})
	srv.Register(rpc.Method{
		Name: "install",
		Help: "install(reset, fence, writes): one catch-up step, durable when it returns. With reset, empty the replica first " +
			"and refuse prepares of transactions before fence. Used by the coordinator.",
		Signature: [][]string{{"boolean", "boolean", "string", "array"}},
		Handler: fenced("install", true, func(ctx context.Context, ps []any) (any, error) {
			in, err := decodeInstall(ps)
			if err != nil {
				return nil, rpc.Faultf(rpc.InvalidParams, "install: %v", err)
			}
			if err := b.Install(ctx, in); err != nil {
				return nil, err
			}
			return true, nil
		}),
	})
	srv.Register(rpc.Method{
		Name:      "digest",
		Help:      "Number of keys, SHA-256 over the sorted keys, values, types and versions, and number of prepared transactions: equal digests mean equal replicas.",
		Signature: [][]string{{"struct"}},
		Handler: fenced("digest", false, func(ctx context.Context, ps []any) (any, error) {
			if err := rpc.Arity(ps); err != nil {
				return nil, err
			}
			d, err := b.Digest(ctx)
			if err != nil {
				return nil, err
			}
			return map[string]any{"keys": d.Keys, "hash": d.Hash, "prepared": d.Prepared}, nil
		}),
	})
	srv.Register(rpc.Method{
		Name:      "stats",
		Help:      "Counters since start: batches (SQLite commits, one WAL fsync each), prepares, commits, aborts, transactions held prepared, calls refused for a stale term, and the highest term seen.",
		Signature: [][]string{{"struct"}},
		Handler: func(ctx context.Context, ps []any) (any, error) {
			if err := rpc.Arity(ps); err != nil {
				return nil, err
			}
			out := map[string]any{}
			for k, v := range b.Counters() {
				out[k] = v
			}
			return out, nil
		},
	})
	srv.Register(rpc.Method{
		Name:      "prepared",
		Help:      "The transactions this participant holds prepared (txid, keys, since).",
		Signature: [][]string{{"array"}},
		Handler: fenced("prepared", false, func(ctx context.Context, ps []any) (any, error) {
			if err := rpc.Arity(ps); err != nil {
				return nil, err
			}
			pts, err := b.PreparedTxs(ctx)
			if err != nil {
				return nil, err
			}
			out := make([]any, len(pts))
			for i, p := range pts {
				since := ""
				if !p.Since.IsZero() {
					since = p.Since.UTC().Format(time.RFC3339Nano)
				}
				keys := make([]any, len(p.Keys))
				for j, k := range p.Keys {
					keys[j] = k
				}
				out[i] = map[string]any{"txid": p.TxID, "keys": keys, "since": since}
			}
			return out, nil
		}),
	})
}

// batchCalls takes the batch method's params, read by readBatch or
// decoded as a tree: each entry's call, a result for each (with why the
// call could not be decoded, if it could not), the calls to run, and the
// entry of each (nil: every entry is a call, in order).
func batchCalls(ps []any) (entries []protocol.Call, results []protocol.CallResult, calls []protocol.Call, at []int, err error) {
	if err := rpc.Arity(ps, "calls"); err != nil {
		return nil, nil, nil, nil, err
	}
	if read, ok := ps[0].(readCalls); ok {
		return read, make([]protocol.CallResult, len(read)), read, nil, nil
	}
	list, ok := ps[0].([]any)
	if !ok {
		return nil, nil, nil, nil, rpc.Faultf(rpc.InvalidParams, "param 1 (calls): want array, got %T", ps[0])
	}
	entries = make([]protocol.Call, len(list))
	results = make([]protocol.CallResult, len(list))
	at = []int{}
	for i, v := range list {
		c, err := decodeCall(v)
		if err != nil {
			results[i].Err = rpc.Faultf(rpc.InvalidParams, "call %d: %v", i+1, err)
			continue
		}
		entries[i] = c
		calls = append(calls, c)
		at = append(at, i)
	}
	return entries, results, calls, at, nil
}
