package api

import (
	"context"
	"errors"

	"github.com/twopc/twopc/coordinator"
	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/protocol"
)

// Limits on what a client may store and ask.
type Limits struct {
	MaxKeyBytes   int
	MaxValueBytes int
	MaxCompares   int // per txn
	MaxOps        int // per branch of a txn
}

// DefaultLimits: keys up to 1 KiB, values up to 1 MiB, 128 compares and
// 128 ops per branch.
func DefaultLimits() Limits {
	return Limits{MaxKeyBytes: 1024, MaxValueBytes: 1 << 20, MaxCompares: 128, MaxOps: 128}
}

// Register adds the public methods (put, get, delete, txn, status,
// transactions) and
// the participants' tx.outcome to srv.
func Register(srv *rpc.Server, c *coordinator.Coordinator, lim Limits) {
	key := func(ps []any) (string, error) {
		k, err := rpc.String(ps, 0, "key")
		if err != nil {
			return "", err
		}
		if k == "" {
			return "", rpc.Faultf(rpc.InvalidParams, "param 1 (key): must not be empty")
		}
		if len(k) > lim.MaxKeyBytes {
			return "", rpc.Faultf(rpc.TooLarge, "key is %d bytes, the limit is %d", len(k), lim.MaxKeyBytes)
		}
		return k, nil
	}
	// onlyKey reads the params of a call that takes just a key.
	onlyKey := func(ps []any) (string, error) {
		if err := rpc.Arity(ps, "key"); err != nil {
			return "", err
		}
		return key(ps)
	}
	srv.Register(rpc.Method{
		Name: "put",
		Help: "put(key, value): store value (string or base64) under key on every participant atomically; " +
			"returns true once the write is durable. Faults: 2 conflict, 3 unavailable (both: nothing written, safe to retry), 4 too large.",
		Signature: [][]string{{"boolean", "string", "string"}, {"boolean", "string", "base64"}},
		Handler: func(ctx context.Context, ps []any) (any, error) {
			if err := rpc.Arity(ps, "key", "value"); err != nil {
				return nil, err
			}
			k, err := key(ps)
			if err != nil {
				return nil, err
			}
			data, bin, err := rpc.StringOrBytes(ps, 1, "value")
			if err != nil {
				return nil, err
			}
			if len(data) > lim.MaxValueBytes {
				return nil, rpc.Faultf(rpc.TooLarge, "value is %d bytes, the limit is %d", len(data), lim.MaxValueBytes)
			}
			if err := c.Put(ctx, k, protocol.Value{Data: data, Binary: bin}); err != nil {
				return nil, fault(err)
			}
			return true, nil
		},
	})
	srv.Register(rpc.Method{
		Name:      "get",
		Help:      "get(key): the value of key, in the type it was put with (string or base64). Faults: 1 not found, 3 unavailable.",
		Signature: [][]string{{"string", "string"}, {"base64", "string"}},
		Handler: func(ctx context.Context, ps []any) (any, error) {
			k, err := onlyKey(ps)
			if err != nil {
				return nil, err
			}
			v, err := c.Get(ctx, k)
			if err != nil {
				return nil, fault(err)
			}
			return wire(v), nil
		},
	})
	srv.Register(rpc.Method{
		Name:      "delete",
		Help:      "delete(key): remove key on every participant atomically; true if it existed, false if not. Faults as for put.",
		Signature: [][]string{{"boolean", "string"}},
		Handler: func(ctx context.Context, ps []any) (any, error) {
			k, err := onlyKey(ps)
			if err != nil {
				return nil, err
			}
			existed, err := c.Delete(ctx, k)
			if err != nil {
				return nil, fault(err)
			}
			return existed, nil
		},
	})
	srv.Register(rpc.Method{
		Name: "txn",
		Help: "txn(compares, success[, failure]): if every compare {key, target value|version|exists, op ==|!=|<|>, value} holds, " +
			"run the success ops, else the failure ops ({op put|delete|get, key[, value]}), as one atomic step. " +
			"Returns {succeeded, results}: put {version}, delete {existed}, get {found, version[, value]}. " +
			"Faults: 2 conflict, 3 unavailable (nothing written, safe to retry), 4 too large, 6 outcome unknown, -32602 malformed.",
		Signature: [][]string{{"struct", "array", "array"}, {"struct", "array", "array", "array"}},
		Handler: func(ctx context.Context, ps []any) (any, error) {
			t, err := decodeTxn(ps, lim)
			if err != nil {
				return nil, err
			}
			r, err := c.Txn(ctx, t)
			if err != nil {
				return nil, fault(err)
			}
			return encodeResult(r.Succeeded, r.Results), nil
		},
	})
	srv.Register(rpc.Method{
		Name: "status",
		Help: "status(): each participant (name, url, state active/offline/overloaded, in_flight, prepared) " +
			"and counts of committed, aborted, in-doubt (committed, not yet acknowledged by all) and active transactions.",
		Signature: [][]string{{"struct"}},
		Handler: func(ctx context.Context, ps []any) (any, error) {
			if err := rpc.Arity(ps); err != nil {
				return nil, err
			}
			return EncodeStatus(c.Status(ctx)), nil
		},
	})
	srv.Register(rpc.Method{
		Name: "transactions",
		Help: "transactions(): what is not finished in the cluster, the oldest first: the coordinator's unfinished transactions " +
			"joined with what each participant holds prepared ({txid, state, keys, age_seconds, prepared_at, silent, waits_for, records}). " +
			"Keys are listed; values never are.",
		Signature: [][]string{{"array"}},
		Handler: func(ctx context.Context, ps []any) (any, error) {
			if err := rpc.Arity(ps); err != nil {
				return nil, err
			}
			return EncodePending(c.Pending(ctx)), nil
		},
	})
	srv.Register(rpc.Method{
		Name: "members.add",
		Help: "members.add(name, url): add the participant served at url. It starts excluded, catches up from the write set, " +
			"then joins it (status shows excluded, catching-up, active). Needs the peer token.",
		Signature: [][]string{{"boolean", "string", "string"}},
		Handler: func(ctx context.Context, ps []any) (any, error) {
			p, err := rpc.Strings(ps, "name", "url")
			if err != nil {
				return nil, err
			}
			name, url := p[0], p[1]
			if err := c.AddMember(ctx, name, url); err != nil {
				return nil, fault(err)
			}
			return true, nil
		},
	})
	srv.Register(rpc.Method{
		Name: "members.remove",
		Help: "members.remove(name): take the participant out for good; refused if the write set would go below its minimum. " +
			"Needs the peer token.",
		Signature: [][]string{{"boolean", "string"}},
		Handler: func(ctx context.Context, ps []any) (any, error) {
			p, err := rpc.Strings(ps, "name")
			if err != nil {
				return nil, err
			}
			name := p[0]
			if err := c.RemoveMember(ctx, name); err != nil {
				return nil, fault(err)
			}
			return true, nil
		},
	})
	srv.Register(rpc.Method{
		Name: "tx.outcome",
		Help: "tx.outcome(txid): \"commit\" or \"abort\". Used by participants to resolve what they hold prepared; " +
			"a transaction not yet decided is aborted by this call.",
		Signature: [][]string{{"string", "string"}},
		Handler: func(ctx context.Context, ps []any) (any, error) {
			p, err := rpc.Strings(ps, "txid")
			if err != nil {
				return nil, err
			}
			id := p[0]
			commit, err := c.Outcome(ctx, id)
			if err != nil {
				return nil, rpc.Faultf(rpc.Unavailable, "%v", err)
			}
			if commit {
				return "commit", nil
			}
			return "abort", nil
		},
	})
}

func wire(v protocol.Value) any {
	if v.Binary {
		return v.Data
	}
	return string(v.Data)
}

// fault maps the coordinator's errors to documented fault codes.
func fault(err error) error {
	var code int
	switch {
	case errors.Is(err, coordinator.ErrNotFound):
		code = rpc.NotFound
	case errors.Is(err, coordinator.ErrConflict):
		code = rpc.Conflict
	case errors.Is(err, coordinator.ErrUnavailable), errors.Is(err, coordinator.ErrStopped), errors.Is(err, coordinator.ErrNotLeading):
		code = rpc.Unavailable
	case errors.Is(err, coordinator.ErrOutcomeUnknown):
		code = rpc.OutcomeUnknown
	case errors.Is(err, coordinator.ErrTooLarge):
		code = rpc.TooLarge
	case errors.Is(err, coordinator.ErrMembership):
		code = rpc.InvalidParams
	case errors.Is(err, coordinator.ErrDiverged):
		code = rpc.InternalError
	default:
		return err
	}
	return &rpc.Fault{Code: code, Message: err.Error()}
}
