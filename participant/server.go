package participant

import (
	"context"
	"time"

	"github.com/twopc/twopc/internal/rpc"
)

// The participant's XML-RPC methods. The coordinator calls batch (every
// prepare, commit, abort and read; format in wire.go) and prepared;
// operators and drills call read, digest and stats:
//
//	read(key) -> {found bool, value, pending txid|"", pending_op, pending_value}
//	digest() -> {keys int, hash string, prepared int}
//	stats() -> {batches, prepares, commits, aborts, prepared int}
//	prepared() -> [{txid, key, since "RFC 3339"|""}]

// Register adds the participant's methods to srv.
func Register(srv *rpc.Server, s *Store) {
	str := func(ps []any, i int, name string) (string, error) { return rpc.String(ps, i, name) }
	srv.Register(rpc.Method{
		Name:      "read",
		Help:      "The committed value of a key and, if it is prepared, the pending transaction and its write, from one snapshot.",
		Signature: [][]string{{"struct", "string"}},
		Handler: func(ctx context.Context, ps []any) (any, error) {
			if err := rpc.Arity(ps, "key"); err != nil {
				return nil, err
			}
			key, err := str(ps, 0, "key")
			if err != nil {
				return nil, err
			}
			r, err := s.Read(ctx, key)
			if err != nil {
				return nil, err
			}
			return map[string]any{
				"found": r.Found, "value": wireValue(r.Value),
				"pending": r.Pending, "pending_op": r.Write.Op.String(), "pending_value": wireValue(r.Write.Value),
			}, nil
		},
	})
	srv.Register(rpc.Method{
		Name: "batch",
		Help: "Many prepare/commit/abort/read calls in one request (see participant/wire.go); " +
			"its writes share one SQLite transaction. Used by the coordinator.",
		Signature: [][]string{{"array", "array"}},
		Handler: func(ctx context.Context, ps []any) (any, error) {
			if err := rpc.Arity(ps, "calls"); err != nil {
				return nil, err
			}
			list, ok := ps[0].([]any)
			if !ok {
				return nil, rpc.Faultf(rpc.InvalidParams, "param 1 (calls): want array, got %T", ps[0])
			}
			out := make([]any, len(list))
			var calls []Call
			var at []int
			for i, v := range list {
				c, err := decodeCall(v)
				if err != nil {
					out[i] = encodeReply(c, Reply{Err: rpc.Faultf(rpc.InvalidParams, "call %d: %v", i+1, err)})
					continue
				}
				calls = append(calls, c)
				at = append(at, i)
			}
			for j, r := range s.Batch(ctx, calls) {
				out[at[j]] = encodeReply(calls[j], r)
			}
			return out, nil
		},
	})
	srv.Register(rpc.Method{
		Name:      "digest",
		Help:      "Number of keys, SHA-256 over the sorted key/value pairs, and number of prepared transactions: equal digests mean equal replicas.",
		Signature: [][]string{{"struct"}},
		Handler: func(ctx context.Context, ps []any) (any, error) {
			if err := rpc.Arity(ps); err != nil {
				return nil, err
			}
			d, err := s.Digest(ctx)
			if err != nil {
				return nil, err
			}
			return map[string]any{"keys": d.Keys, "hash": d.Hash, "prepared": d.Prepared}, nil
		},
	})
	srv.Register(rpc.Method{
		Name:      "stats",
		Help:      "Counters since start: batches (SQLite commits, one WAL fsync each), prepares, commits, aborts, and transactions held prepared.",
		Signature: [][]string{{"struct"}},
		Handler: func(ctx context.Context, ps []any) (any, error) {
			if err := rpc.Arity(ps); err != nil {
				return nil, err
			}
			st := s.Stats()
			return map[string]any{"batches": int64(st.Batches), "prepares": int64(st.Prepares),
				"commits": int64(st.Commits), "aborts": int64(st.Aborts), "prepared": st.Prepared}, nil
		},
	})
	srv.Register(rpc.Method{
		Name:      "prepared",
		Help:      "The transactions this participant holds prepared (txid, key, since).",
		Signature: [][]string{{"array"}},
		Handler: func(ctx context.Context, ps []any) (any, error) {
			if err := rpc.Arity(ps); err != nil {
				return nil, err
			}
			pts, err := s.PreparedTxs(ctx)
			if err != nil {
				return nil, err
			}
			out := make([]any, len(pts))
			for i, p := range pts {
				since := ""
				if !p.Since.IsZero() {
					since = p.Since.UTC().Format(time.RFC3339Nano)
				}
				out[i] = map[string]any{"txid": p.TxID, "key": p.Key, "since": since}
			}
			return out, nil
		},
	})
}

// wireValue sends a value in the XML-RPC type it was stored as.
func wireValue(v Value) any {
	if v.Binary {
		return v.Data
	}
	return string(v.Data)
}
