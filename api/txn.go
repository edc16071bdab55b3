package api

import (
	"fmt"

	"github.com/twopc/twopc/coordinator"
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
	cs := d.array(ps[0], where{"param 1 (compares)", 0})
	for i, v := range cs {
		t.Compares = append(t.Compares, d.compare(v, where{"compare %d", i + 1}))
	}
	t.Success = d.ops(ps[1], where{"param 2 (success)", 0}, "success op %d")
	if len(ps) == 3 {
		t.Failure = d.ops(ps[2], where{"param 3 (failure)", 0}, "failure op %d")
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

// where names a part of txn's params in a fault: format, with n if not
// 0. Only a fault formats it: an 8-put transaction's places, formatted
// at every op, were a twentieth of a coordinator's allocations.
type where struct {
	format string
	n      int
}

func (w where) String() string {
	if w.n == 0 {
		return w.format
	}
	return fmt.Sprintf(w.format, w.n)
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

func (d *txnDecoder) array(v any, what where) []any {
	a, ok := v.([]any)
	if !ok && d.err == nil {
		d.fail(rpc.InvalidParams, "%s: want array, got %s", what, rpc.TypeName(v))
	}
	return a
}

// fields reads a struct whose members must be among names.
func (d *txnDecoder) fields(v any, what where, names ...string) map[string]any {
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

func (d *txnDecoder) str(m map[string]any, name string, what where) string {
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

func (d *txnDecoder) key(m map[string]any, what where) string {
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

func (d *txnDecoder) value(m map[string]any, what where) protocol.Value {
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

func (d *txnDecoder) compare(v any, what where) protocol.Compare {
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

func (d *txnDecoder) ops(v any, what where, each string) []protocol.Op {
	list := d.array(v, what)
	var ops []protocol.Op
	if len(list) > 0 {
		ops = make([]protocol.Op, 0, len(list))
	}
	for i, ov := range list {
		at := where{each, i + 1}
		m := d.fields(ov, at, "op", "key", "value")
		if m == nil {
			return nil
		}
		var o protocol.Op
		var err error
		if o.Kind, err = protocol.ParseOpKind(d.str(m, "op", at)); err != nil {
			d.fail(rpc.InvalidParams, "%s: %v", at, err)
			return nil
		}
		o.Key = d.key(m, at)
		_, hasValue := m["value"]
		switch {
		case o.Kind == protocol.OpPut:
			o.Value = d.value(m, at)
		case hasValue:
			d.fail(rpc.InvalidParams, "%s: a %s takes no value", at, o.Kind)
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

// EncodeTxn is t as txn's params, the inverse of the decoding above: what
// a Go client sends.
func EncodeTxn(t *protocol.Txn) []any {
	cs := make([]any, len(t.Compares))
	for i, c := range t.Compares {
		var v any
		switch c.Target {
		case protocol.TargetValue:
			v = wire(c.Value)
		case protocol.TargetVersion:
			v = c.Version
		case protocol.TargetExists:
			v = c.Exists
		}
		cs[i] = map[string]any{"key": c.Key, "target": c.Target.String(), "op": c.Op.String(), "value": v}
	}
	ops := func(os []protocol.Op) []any {
		out := make([]any, len(os))
		for i, o := range os {
			m := map[string]any{"op": o.Kind.String(), "key": o.Key}
			if o.Kind == protocol.OpPut {
				m["value"] = wire(o.Value)
			}
			out[i] = m
		}
		return out
	}
	return []any{cs, ops(t.Success), ops(t.Failure)}
}

// decodeResult reads txn's answer back into Go types (the client's half
// of encodeResult).
func decodeResult(v any, t *protocol.Txn) (coordinator.Result, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return coordinator.Result{}, fmt.Errorf("api: txn: want struct, got %T", v)
	}
	var r coordinator.Result
	r.Succeeded, _ = m["succeeded"].(bool)
	results, _ := m["results"].([]any)
	branch := t.Success
	if !r.Succeeded {
		branch = t.Failure
	}
	if len(results) != len(branch) {
		return coordinator.Result{}, fmt.Errorf("api: txn: %d results for %d ops", len(results), len(branch))
	}
	for i, rv := range results {
		rm, _ := rv.(map[string]any)
		res := protocol.Result{Kind: branch[i].Kind}
		res.Version, _ = rm["version"].(int64)
		res.Existed, _ = rm["existed"].(bool)
		res.Found, _ = rm["found"].(bool)
		switch x := rm["value"].(type) {
		case string:
			res.Value = protocol.Value{Data: []byte(x)}
		case []byte:
			res.Value = protocol.Value{Data: x, Binary: true}
		}
		r.Results = append(r.Results, res)
	}
	return r, nil
}
