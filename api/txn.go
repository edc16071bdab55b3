package api

import (
	"fmt"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/protocol"
)

// decodeTxn reads txn's params, (compares, success[, failure]), as
// DESIGN.md specifies them:
//
//	compare: {key, target: "value"|"version"|"exists", op: "=="|"!="|"<"|">", value}
//	op:      {op: "put"|"delete"|"get", key[, value]}
//
// Every problem is a fault naming where it is: -32602 for a wrong type,
// an unknown op or target, a missing or extra member, a key written twice
// in one branch; fault 4 past a limit.
func decodeTxn(ps []any, lim Limits) (*protocol.Txn, error) {
	if len(ps) < 2 || len(ps) > 3 {
		return nil, rpc.Faultf(rpc.InvalidParams, "want 2 or 3 params (compares, success, failure), got %d", len(ps))
	}
	d := txnDecoder{lim: lim}
	var t protocol.Txn
	cs := d.array(ps[0], "param 1 (compares)")
	for i, v := range cs {
		t.Compares = append(t.Compares, d.compare(v, fmt.Sprintf("compare %d", i+1)))
	}
	t.Success = d.ops(ps[1], "param 2 (success)", "success")
	if len(ps) == 3 {
		t.Failure = d.ops(ps[2], "param 3 (failure)", "failure")
	}
	if d.err != nil {
		return nil, d.err
	}
	if err := t.Validate(protocol.Limits{MaxCompares: lim.MaxCompares, MaxOps: lim.MaxOps}); err != nil {
		code := rpc.InvalidParams
		if _, ok := err.(*protocol.TooLargeError); ok {
			code = rpc.TooLarge
		}
		return nil, rpc.Faultf(code, "%v", err)
	}
	return &t, nil
}

// txnDecoder keeps the first problem it meets.
type txnDecoder struct {
	lim Limits
	err error
}

func (d *txnDecoder) fail(code int, format string, args ...any) {
	if d.err == nil {
		d.err = rpc.Faultf(code, format, args...)
	}
}

func (d *txnDecoder) array(v any, what string) []any {
	a, ok := v.([]any)
	if !ok && d.err == nil {
		d.fail(rpc.InvalidParams, "%s: want array, got %s", what, rpc.TypeName(v))
	}
	return a
}

// fields reads a struct whose members must be among names.
func (d *txnDecoder) fields(v any, what string, names ...string) map[string]any {
	m, ok := v.(map[string]any)
	if !ok {
		d.fail(rpc.InvalidParams, "%s: want struct, got %s", what, rpc.TypeName(v))
		return nil
	}
	for k := range m {
		known := false
		for _, n := range names {
			known = known || k == n
		}
		if !known {
			d.fail(rpc.InvalidParams, "%s: unknown member %.40q (want %v)", what, k, names)
		}
	}
	return m
}

func (d *txnDecoder) str(m map[string]any, name, what string) string {
	v, ok := m[name]
	if !ok {
		d.fail(rpc.InvalidParams, "%s: member %s is missing", what, name)
		return ""
	}
	s, ok := v.(string)
	if !ok {
		d.fail(rpc.InvalidParams, "%s: %s must be a string, got %s", what, name, rpc.TypeName(v))
	}
	return s
}

func (d *txnDecoder) key(m map[string]any, what string) string {
	k := d.str(m, "key", what)
	switch {
	case d.err != nil:
	case k == "":
		d.fail(rpc.InvalidParams, "%s: key must not be empty", what)
	case len(k) > d.lim.MaxKeyBytes:
		d.fail(rpc.TooLarge, "%s: key is %d bytes, the limit is %d", what, len(k), d.lim.MaxKeyBytes)
	}
	return k
}

func (d *txnDecoder) value(m map[string]any, what string) protocol.Value {
	v, ok := m["value"]
	if !ok {
		d.fail(rpc.InvalidParams, "%s: member value is missing", what)
		return protocol.Value{}
	}
	var val protocol.Value
	switch x := v.(type) {
	case string:
		val = protocol.Value{Data: []byte(x)}
	case []byte:
		val = protocol.Value{Data: x, Binary: true}
	default:
		d.fail(rpc.InvalidParams, "%s: value must be a string or base64, got %s", what, rpc.TypeName(v))
	}
	if len(val.Data) > d.lim.MaxValueBytes {
		d.fail(rpc.TooLarge, "%s: value is %d bytes, the limit is %d", what, len(val.Data), d.lim.MaxValueBytes)
	}
	return val
}

func (d *txnDecoder) compare(v any, what string) protocol.Compare {
	m := d.fields(v, what, "key", "target", "op", "value")
	if m == nil {
		return protocol.Compare{}
	}
	c := protocol.Compare{Key: d.key(m, what)}
	var err error
	if c.Target, err = protocol.ParseTarget(d.str(m, "target", what)); err != nil {
		d.fail(rpc.InvalidParams, "%s: %v", what, err)
	}
	if c.Op, err = protocol.ParseCmpOp(d.str(m, "op", what)); err != nil {
		d.fail(rpc.InvalidParams, "%s: %v", what, err)
	}
	if d.err != nil {
		return c
	}
	switch c.Target {
	case protocol.TargetValue:
		c.Value = d.value(m, what)
	case protocol.TargetVersion:
		n, ok := m["value"].(int64)
		if !ok {
			d.fail(rpc.InvalidParams, "%s: a version compare's value must be an int, got %s", what, rpc.TypeName(m["value"]))
		}
		c.Version = n
	case protocol.TargetExists:
		b, ok := m["value"].(bool)
		if !ok {
			d.fail(rpc.InvalidParams, "%s: an exists compare's value must be a boolean, got %s", what, rpc.TypeName(m["value"]))
		}
		c.Exists = b
	}
	return c
}

func (d *txnDecoder) ops(v any, what, branch string) []protocol.Op {
	var ops []protocol.Op
	for i, ov := range d.array(v, what) {
		where := fmt.Sprintf("%s op %d", branch, i+1)
		m := d.fields(ov, where, "op", "key", "value")
		if m == nil {
			return nil
		}
		var o protocol.Op
		var err error
		if o.Kind, err = protocol.ParseOpKind(d.str(m, "op", where)); err != nil {
			d.fail(rpc.InvalidParams, "%s: %v", where, err)
			return nil
		}
		o.Key = d.key(m, where)
		_, hasValue := m["value"]
		switch {
		case o.Kind == protocol.OpPut:
			o.Value = d.value(m, where)
		case hasValue:
			d.fail(rpc.InvalidParams, "%s: a %s takes no value", where, o.Kind)
		}
		ops = append(ops, o)
	}
	return ops
}

// encodeResult is txn's answer: {succeeded, results}, one struct per op
// of the branch that ran: put {version}; delete {existed}; get {found,
// version[, value]}.
func encodeResult(succeeded bool, results []protocol.Result) map[string]any {
	out := make([]any, len(results))
	for i, r := range results {
		switch r.Kind {
		case protocol.OpPut:
			out[i] = map[string]any{"version": r.Version}
		case protocol.OpDelete:
			out[i] = map[string]any{"existed": r.Existed}
		case protocol.OpGet:
			m := map[string]any{"found": r.Found, "version": r.Version}
			if r.Found {
				m["value"] = wire(r.Value)
			}
			out[i] = m
		}
	}
	return map[string]any{"succeeded": succeeded, "results": out}
}
