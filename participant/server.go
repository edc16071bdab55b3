package participant

import (
	"context"
	"time"

	"github.com/twopc/twopc/internal/rpc"
)

// The participant's XML-RPC methods. They are called by the coordinator
// (prepare, commit, abort, read, prepared) and by operators and drills
// (digest). Wire formats, shared with Client:
//
//	prepare(txid, key, op "put"|"delete", value string|base64)
//	    -> {vote "yes"|"no", existed bool, conflict bool, reason string}
//	commit(txid), abort(txid) -> true
//	read(key) -> {found bool, value, pending txid|"", pending_op, pending_value}
//	digest() -> {keys int, hash string, prepared int}
//	prepared() -> [{txid, key, since "RFC 3339"|""}]

// Register adds the participant's methods to srv.
func Register(srv *rpc.Server, s *Store) {
	str := func(ps []any, i int, name string) (string, error) { return rpc.String(ps, i, name) }
	srv.Register(rpc.Method{
		Name:      "prepare",
		Help:      "Durably record a write and lock its key, then vote yes; vote no if the key is locked or the transaction was aborted.",
		Signature: [][]string{{"struct", "string", "string", "string", "string"}, {"struct", "string", "string", "string", "base64"}},
		Handler: func(ctx context.Context, ps []any) (any, error) {
			if err := rpc.Arity(ps, "txid", "key", "op", "value"); err != nil {
				return nil, err
			}
			txid, err := str(ps, 0, "txid")
			if err != nil {
				return nil, err
			}
			key, err := str(ps, 1, "key")
			if err != nil {
				return nil, err
			}
			opName, err := str(ps, 2, "op")
			if err != nil {
				return nil, err
			}
			op, err := ParseOp(opName)
			if err != nil {
				return nil, rpc.Faultf(rpc.InvalidParams, "param 3 (op): %v", err)
			}
			data, bin, err := rpc.StringOrBytes(ps, 3, "value")
			if err != nil {
				return nil, err
			}
			v, err := s.Prepare(ctx, txid, Write{Key: key, Op: op, Value: Value{Data: data, Binary: bin}})
			if err != nil {
				return nil, err
			}
			vote := "no"
			if v.Yes {
				vote = "yes"
			}
			return map[string]any{"vote": vote, "existed": v.Existed, "conflict": v.Conflict, "reason": v.Reason}, nil
		},
	})
	for _, m := range []struct {
		name, help string
		f          func(context.Context, string) error
	}{
		{"commit", "Apply a prepared transaction and unlock its key (idempotent).", s.Commit},
		{"abort", "Discard a prepared transaction and unlock its key (idempotent); a later prepare of it is refused.", s.Abort},
	} {
		srv.Register(rpc.Method{
			Name: m.name, Help: m.help, Signature: [][]string{{"boolean", "string"}},
			Handler: func(ctx context.Context, ps []any) (any, error) {
				if err := rpc.Arity(ps, "txid"); err != nil {
					return nil, err
				}
				txid, err := str(ps, 0, "txid")
				if err != nil {
					return nil, err
				}
				return true, m.f(ctx, txid)
			},
		})
	}
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
