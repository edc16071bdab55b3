package drill

import (
	"fmt"
	"slices"
	"strings"

	"github.com/twopc/twopc/protocol"
)

// TxnOp is a transaction as the drill sent it and, when its call returned
// a result, the answer. It is kept in the history in the wire's own words
// (targets, operators and ops as strings, values as the strings the drill
// writes), so that history.jsonl reads like the calls that were made; the
// checker turns it into a protocol.Txn and runs protocol.Evaluate, the
// semantics every participant runs.
type TxnOp struct {
	Compares  []TxnCompare `json:"compares,omitempty"`
	Success   []TxnStep    `json:"success,omitempty"`
	Failure   []TxnStep    `json:"failure,omitempty"`
	Succeeded bool         `json:"succeeded,omitempty"` // the answer, when OK
	Results   []TxnResult  `json:"results,omitempty"`   // one per op of the branch that ran, when OK
}

// TxnCompare is one compare: Value is the operand of a "value" compare,
// Version of "version", Exists of "exists".
type TxnCompare struct {
	Key     string `json:"key"`
	Target  string `json:"target"` // value, version, exists
	Op      string `json:"op"`     // ==, !=, <, >
	Value   string `json:"value,omitempty"`
	Version int64  `json:"version,omitempty"`
	Exists  bool   `json:"exists,omitempty"`
}

// TxnStep is one op of a branch: put (with Value), delete or get.
type TxnStep struct {
	Op    string `json:"op"`
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
}

// TxnResult is what one op of the branch that ran gave back: put
// {version}, delete {existed}, get {found, version[, value]}.
type TxnResult struct {
	Version int64  `json:"version,omitempty"`
	Existed bool   `json:"existed,omitempty"`
	Found   bool   `json:"found,omitempty"`
	Value   string `json:"value,omitempty"`
}

// Keys returns every key t touches, sorted and without repeats.
func (t *TxnOp) Keys() []string {
	var keys []string
	for _, c := range t.Compares {
		keys = append(keys, c.Key)
	}
	for _, s := range append(slices.Clone(t.Success), t.Failure...) {
		keys = append(keys, s.Key)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// ReadOnly reports whether neither branch writes: such a transaction,
// when its outcome is unknown, observed nothing and changed nothing.
func (t *TxnOp) ReadOnly() bool {
	for _, s := range append(slices.Clone(t.Success), t.Failure...) {
		if s.Op != "get" {
			return false
		}
	}
	return true
}

// ran is the branch that ran, as the answer says: the one its Results
// are for.
func (t *TxnOp) ran() []TxnStep {
	if t.Succeeded {
		return t.Success
	}
	return t.Failure
}

// protocol is t as the coordinator decodes it.
func (t *TxnOp) protocol() (*protocol.Txn, error) {
	var p protocol.Txn
	for i, c := range t.Compares {
		pc := protocol.Compare{Key: c.Key, Value: protocol.Value{Data: []byte(c.Value)}, Version: c.Version, Exists: c.Exists}
		var err error
		if pc.Target, err = protocol.ParseTarget(c.Target); err != nil {
			return nil, fmt.Errorf("compare %d: %w", i+1, err)
		}
		if pc.Op, err = protocol.ParseCmpOp(c.Op); err != nil {
			return nil, fmt.Errorf("compare %d: %w", i+1, err)
		}
		p.Compares = append(p.Compares, pc)
	}
	var err error
	if p.Success, err = protocolOps(t.Success, "success"); err != nil {
		return nil, err
	}
	if p.Failure, err = protocolOps(t.Failure, "failure"); err != nil {
		return nil, err
	}
	return &p, p.Validate(protocol.DefaultLimits())
}

func protocolOps(steps []TxnStep, branch string) ([]protocol.Op, error) {
	var ops []protocol.Op
	for i, s := range steps {
		k, err := protocol.ParseOpKind(s.Op)
		if err != nil {
			return nil, fmt.Errorf("%s op %d: %w", branch, i+1, err)
		}
		ops = append(ops, protocol.Op{Kind: k, Key: s.Key, Value: protocol.Value{Data: []byte(s.Value)}})
	}
	return ops, nil
}

// params are t's call params on the wire: (compares, success, failure).
func (t *TxnOp) params() []any {
	cs := make([]any, len(t.Compares))
	for i, c := range t.Compares {
		m := map[string]any{"key": c.Key, "target": c.Target, "op": c.Op}
		switch c.Target {
		case "value":
			m["value"] = c.Value
		case "version":
			m["value"] = c.Version
		case "exists":
			m["value"] = c.Exists
		}
		cs[i] = m
	}
	return []any{cs, wireSteps(t.Success), wireSteps(t.Failure)}
}

func wireSteps(steps []TxnStep) []any {
	out := make([]any, len(steps))
	for i, s := range steps {
		m := map[string]any{"op": s.Op, "key": s.Key}
		if s.Op == "put" {
			m["value"] = s.Value
		}
		out[i] = m
	}
	return out
}

// readReply reads txn's answer, {succeeded, results}, into t; an answer
// of another shape (one result per op of the branch that ran, each as
// DESIGN.md has it) is an error.
func (t *TxnOp) readReply(res any) error {
	m, ok := res.(map[string]any)
	if !ok {
		return fmt.Errorf("reply %T to txn, want struct", res)
	}
	succeeded, ok := m["succeeded"].(bool)
	results, ok2 := m["results"].([]any)
	if !ok || !ok2 {
		return fmt.Errorf("reply to txn without succeeded and results: %v", m)
	}
	t.Succeeded = succeeded
	ran := t.ran()
	if len(results) != len(ran) {
		return fmt.Errorf("txn gave %d results for %d ops", len(results), len(ran))
	}
	t.Results = make([]TxnResult, len(results))
	for i, r := range results {
		rm, ok := r.(map[string]any)
		if !ok {
			return fmt.Errorf("txn result %d: %T, want struct", i+1, r)
		}
		var res TxnResult
		var okv bool
		switch ran[i].Op {
		case "put":
			res.Version, okv = rm["version"].(int64)
		case "delete":
			res.Existed, okv = rm["existed"].(bool)
		case "get":
			var okf bool
			res.Found, okf = rm["found"].(bool)
			res.Version, okv = rm["version"].(int64)
			okv = okv && okf
			if res.Found {
				var okval bool
				res.Value, okval = rm["value"].(string)
				okv = okv && okval
			}
		}
		if !okv {
			return fmt.Errorf("txn result %d for %s: %v", i+1, ran[i].Op, rm)
		}
		t.Results[i] = res
	}
	return nil
}

// String is the call and, if it has one, the answer, for reports and
// porcupine's visualization: txn(if version(k1)==2 then put(k1,"v") else get(k1)).
func (t *TxnOp) String() string {
	var cs []string
	for _, c := range t.Compares {
		var operand string
		switch c.Target {
		case "value":
			operand = fmt.Sprintf("%q", c.Value)
		case "version":
			operand = fmt.Sprint(c.Version)
		default:
			operand = fmt.Sprint(c.Exists)
		}
		cs = append(cs, fmt.Sprintf("%s(%q)%s%s", c.Target, c.Key, c.Op, operand))
	}
	s := "txn(" + steps(t.Success)
	if len(cs) > 0 {
		s = "txn(if " + strings.Join(cs, " && ") + " then " + steps(t.Success) + " else " + steps(t.Failure)
	}
	return s + ")"
}

// answer describes the reply: which branch ran and its results.
func (t *TxnOp) answer() string {
	ran, branch := t.ran(), "failure"
	if t.Succeeded {
		branch = "success"
	}
	var rs []string
	for i, r := range t.Results {
		op := ""
		if i < len(ran) {
			op = ran[i].Op
		}
		switch op {
		case "put":
			rs = append(rs, fmt.Sprintf("v%d", r.Version))
		case "delete":
			rs = append(rs, fmt.Sprintf("existed=%v", r.Existed))
		default:
			if r.Found {
				rs = append(rs, fmt.Sprintf("%q v%d", r.Value, r.Version))
			} else {
				rs = append(rs, "missing")
			}
		}
	}
	return branch + " [" + strings.Join(rs, ", ") + "]"
}

func steps(ss []TxnStep) string {
	var out []string
	for _, s := range ss {
		if s.Op == "put" {
			out = append(out, fmt.Sprintf("put(%q,%q)", s.Key, s.Value))
		} else {
			out = append(out, fmt.Sprintf("%s(%q)", s.Op, s.Key))
		}
	}
	return strings.Join(out, "; ")
}
