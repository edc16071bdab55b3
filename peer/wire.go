package peer

import (
	"fmt"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/protocol"
)

// The batch method's wire format. Arrays rather than structs: a batch can
// hold hundreds of entries, and member names would double the XML.
//
//	batch([call, ...]) -> [result, ...]   one result per call, same order
//	  ["prepare", txid, [compares, success ops, failure ops]]
//	      compare: [key, "value"|"version"|"exists", "=="|"!="|"<"|">", value|int|bool]
//	      op: ["put", key, value] | ["delete", key] | ["get", key]
//	      value: string, or base64 for a binary value
//	    -> ["yes"|"no"|"toolarge"|"readonly", succeeded bool, conflict bool, reason string, [result, ...]]
//	      ("toolarge": a NO because the results would pass the participant's limit)
//	      result: ["put", version int] | ["delete", existed bool] | ["get", found bool, version int, value]
//	  ["commit", txid], ["abort", txid] -> true
//	  ["read", [key, ...]]
//	    -> [[found bool, value, version int, pending txid|"", next found bool, next value, next version int], ...]
//	  a call that fails -> {faultCode int, faultString string}

// appendCall writes c as a batch entry. Written element by element
// (rpc.ValueWriter), not built as a tree of any: the coordinator encodes
// every prepare, commit and abort it sends this way. A key or value XML
// cannot carry shows in w.Err.
func appendCall(w *rpc.ValueWriter, c protocol.Call) {
	w.OpenArray()
	switch c.Kind {
	case protocol.MsgPrepare:
		w.String("prepare")
		w.String(c.TxID)
		appendTxn(w, c.Txn)
	case protocol.MsgRead:
		w.String("read")
		w.OpenArray()
		for _, k := range c.Keys {
			w.String(k)
		}
		w.CloseArray()
	default:
		w.String(c.Kind.String())
		w.String(c.TxID)
	}
	w.CloseArray()
}

func appendTxn(w *rpc.ValueWriter, t *protocol.Txn) {
	w.OpenArray()
	w.OpenArray()
	for _, c := range t.Compares {
		w.OpenArray()
		w.String(c.Key)
		w.String(c.Target.String())
		w.String(c.Op.String())
		switch c.Target {
		case protocol.TargetValue:
			appendValue(w, c.Value)
		case protocol.TargetVersion:
			w.Int(c.Version)
		case protocol.TargetExists:
			w.Bool(c.Exists)
		}
		w.CloseArray()
	}
	w.CloseArray()
	appendOps(w, t.Success)
	appendOps(w, t.Failure)
	w.CloseArray()
}

func appendOps(w *rpc.ValueWriter, ops []protocol.Op) {
	w.OpenArray()
	for _, o := range ops {
		w.OpenArray()
		w.String(o.Kind.String())
		w.String(o.Key)
		if o.Kind == protocol.OpPut {
			appendValue(w, o.Value)
		}
		w.CloseArray()
	}
	w.CloseArray()
}

// appendValue is wireValue for a ValueWriter.
func appendValue(w *rpc.ValueWriter, v protocol.Value) {
	if v.Binary {
		w.Base64(v.Data)
	} else {
		w.StringBytes(v.Data)
	}
}

// array reads v as an array of n elements (n < 0: any length).
func array(v any, n int, what string) ([]any, error) {
	a, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: want an array, got %T", what, v)
	}
	if n >= 0 && len(a) != n {
		return nil, fmt.Errorf("%s: want %d elements, got %d", what, n, len(a))
	}
	return a, nil
}

func str(v any, what string) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s: want a string, got %T", what, v)
	}
	return s, nil
}

func decodeCall(v any) (protocol.Call, error) {
	a, err := array(v, -1, "call")
	if err != nil {
		return protocol.Call{}, err
	}
	if len(a) == 0 {
		return protocol.Call{}, fmt.Errorf("call: empty array")
	}
	name, _ := a[0].(string)
	var c protocol.Call
	switch name {
	case "prepare":
		if len(a) != 3 {
			return c, fmt.Errorf("prepare: want 3 elements, got %d", len(a))
		}
		c.Kind = protocol.MsgPrepare
		if c.TxID, err = str(a[1], "prepare txid"); err != nil {
			return c, err
		}
		c.Txn, err = decodeTxn(a[2])
		return c, err
	case "commit", "abort":
		if len(a) != 2 {
			return c, fmt.Errorf("%s: want 2 elements, got %d", name, len(a))
		}
		c.Kind = protocol.MsgCommit
		if name == "abort" {
			c.Kind = protocol.MsgAbort
		}
		c.TxID, err = str(a[1], name+" txid")
		return c, err
	case "read":
		if len(a) != 2 {
			return c, fmt.Errorf("read: want 2 elements, got %d", len(a))
		}
		c.Kind = protocol.MsgRead
		keys, err := array(a[1], -1, "read keys")
		if err != nil {
			return c, err
		}
		c.Keys = make([]string, len(keys))
		for i, k := range keys {
			if c.Keys[i], err = str(k, "read key"); err != nil {
				return c, err
			}
		}
		return c, nil
	}
	return c, fmt.Errorf("unknown call %q (want prepare, commit, abort or read)", name)
}

func decodeTxn(v any) (*protocol.Txn, error) {
	a, err := array(v, 3, "transaction")
	if err != nil {
		return nil, err
	}
	cs, err := array(a[0], -1, "compares")
	if err != nil {
		return nil, err
	}
	t := &protocol.Txn{Compares: make([]protocol.Compare, len(cs))}
	for i, cv := range cs {
		if t.Compares[i], err = decodeCompare(cv); err != nil {
			return nil, err
		}
	}
	if t.Success, err = decodeOps(a[1], "success"); err != nil {
		return nil, err
	}
	if t.Failure, err = decodeOps(a[2], "failure"); err != nil {
		return nil, err
	}
	return t, nil
}

func decodeCompare(v any) (protocol.Compare, error) {
	var c protocol.Compare
	a, err := array(v, 4, "compare")
	if err != nil {
		return c, err
	}
	if c.Key, err = str(a[0], "compare key"); err != nil {
		return c, err
	}
	target, _ := a[1].(string)
	if c.Target, err = protocol.ParseTarget(target); err != nil {
		return c, err
	}
	op, _ := a[2].(string)
	if c.Op, err = protocol.ParseCmpOp(op); err != nil {
		return c, err
	}
	switch c.Target {
	case protocol.TargetValue:
		c.Value, err = valueOf(a[3])
	case protocol.TargetVersion:
		n, ok := a[3].(int64)
		if !ok {
			return c, fmt.Errorf("version compare: want an int, got %T", a[3])
		}
		c.Version = n
	case protocol.TargetExists:
		b, ok := a[3].(bool)
		if !ok {
			return c, fmt.Errorf("exists compare: want a boolean, got %T", a[3])
		}
		c.Exists = b
	}
	return c, err
}

func decodeOps(v any, what string) ([]protocol.Op, error) {
	list, err := array(v, -1, what)
	if err != nil {
		return nil, err
	}
	ops := make([]protocol.Op, len(list))
	for i, ov := range list {
		a, err := array(ov, -1, what+" op")
		if err != nil {
			return nil, err
		}
		if len(a) < 2 {
			return nil, fmt.Errorf("%s op: want at least 2 elements, got %d", what, len(a))
		}
		name, _ := a[0].(string)
		if ops[i].Kind, err = protocol.ParseOpKind(name); err != nil {
			return nil, err
		}
		want := 2
		if ops[i].Kind == protocol.OpPut {
			want = 3
		}
		if len(a) != want {
			return nil, fmt.Errorf("%s %s: want %d elements, got %d", what, name, want, len(a))
		}
		if ops[i].Key, err = str(a[1], what+" key"); err != nil {
			return nil, err
		}
		if want == 3 {
			if ops[i].Value, err = valueOf(a[2]); err != nil {
				return nil, err
			}
		}
	}
	return ops, nil
}

// appendResult writes the reply to c, as appendCall writes a call.
func appendResult(w *rpc.ValueWriter, c protocol.Call, r protocol.CallResult) {
	if r.Err != nil {
		code := rpc.InternalError
		if f, ok := r.Err.(*rpc.Fault); ok {
			code = f.Code
		}
		w.Fault(code, r.Err.Error())
		return
	}
	switch c.Kind {
	case protocol.MsgPrepare:
		v := r.Vote
		kind := voteNames[v.Kind]
		if v.Kind == protocol.VoteNo && v.TooLarge {
			kind = "toolarge"
		}
		w.OpenArray()
		w.String(kind)
		w.Bool(v.Succeeded)
		w.Bool(v.Conflict)
		w.String(v.Reason)
		w.OpenArray()
		for _, res := range v.Results {
			w.OpenArray()
			w.String(res.Kind.String())
			switch res.Kind {
			case protocol.OpPut:
				w.Int(res.Version)
			case protocol.OpDelete:
				w.Bool(res.Existed)
			case protocol.OpGet:
				w.Bool(res.Found)
				w.Int(res.Version)
				appendValue(w, res.Value)
			}
			w.CloseArray()
		}
		w.CloseArray()
		w.CloseArray()
	case protocol.MsgRead:
		w.OpenArray()
		for _, k := range r.Keys {
			w.OpenArray()
			w.Bool(k.Entry.Found)
			appendValue(w, k.Entry.Value)
			w.Int(k.Entry.Version)
			w.String(k.Pending)
			w.Bool(k.Next.Found)
			appendValue(w, k.Next.Value)
			w.Int(k.Next.Version)
			w.CloseArray()
		}
		w.CloseArray()
	default:
		w.Bool(true)
	}
}

var voteNames = map[protocol.VoteKind]string{protocol.VoteNo: "no", protocol.VoteYes: "yes", protocol.VoteReadOnly: "readonly"}

func decodeResult(c protocol.Call, v any) (r protocol.CallResult) {
	if m, ok := v.(map[string]any); ok {
		code, _ := m["faultCode"].(int64)
		msg, _ := m["faultString"].(string)
		return protocol.CallResult{Err: staleTermOf(&rpc.Fault{Code: int(code), Message: msg})}
	}
	var err error
	switch c.Kind {
	case protocol.MsgPrepare:
		r.Vote, err = decodeVote(v)
	case protocol.MsgRead:
		r.Keys, err = decodeKeys(c.Keys, v)
	default:
		if v != true {
			err = fmt.Errorf("want true, got %v", v)
		}
	}
	if err != nil {
		return protocol.CallResult{Err: fmt.Errorf("peer: malformed %s reply: %w", c.Kind, err)}
	}
	return r
}

func decodeVote(v any) (protocol.Vote, error) {
	var vote protocol.Vote
	a, err := array(v, 5, "vote")
	if err != nil {
		return vote, err
	}
	kind, _ := a[0].(string)
	found := kind == "toolarge"
	vote.TooLarge = found
	for k, n := range voteNames {
		if n == kind {
			vote.Kind, found = k, true
		}
	}
	if !found {
		return vote, fmt.Errorf("unknown vote %q", kind)
	}
	vote.Succeeded, _ = a[1].(bool)
	vote.Conflict, _ = a[2].(bool)
	vote.Reason, _ = a[3].(string)
	results, err := array(a[4], -1, "results")
	if err != nil {
		return vote, err
	}
	if len(results) > 0 {
		vote.Results = make([]protocol.Result, 0, len(results))
	}
	for _, rv := range results {
		ra, err := array(rv, -1, "result")
		if err != nil || len(ra) < 2 {
			return vote, fmt.Errorf("malformed result %v", rv)
		}
		name, _ := ra[0].(string)
		var res protocol.Result
		if res.Kind, err = protocol.ParseOpKind(name); err != nil {
			return vote, err
		}
		switch {
		case res.Kind == protocol.OpPut && len(ra) == 2:
			res.Version, _ = ra[1].(int64)
		case res.Kind == protocol.OpDelete && len(ra) == 2:
			res.Existed, _ = ra[1].(bool)
		case res.Kind == protocol.OpGet && len(ra) == 4:
			res.Found, _ = ra[1].(bool)
			res.Version, _ = ra[2].(int64)
			if res.Found {
				if res.Value, err = valueOf(ra[3]); err != nil {
					return vote, err
				}
			}
		default:
			return vote, fmt.Errorf("malformed %s result %v", name, rv)
		}
		vote.Results = append(vote.Results, res)
	}
	return vote, nil
}

func decodeKeys(keys []string, v any) ([]protocol.KeyState, error) {
	list, err := array(v, len(keys), "read")
	if err != nil {
		return nil, err
	}
	out := make([]protocol.KeyState, len(list))
	for i, kv := range list {
		a, err := array(kv, 7, "key state")
		if err != nil {
			return nil, err
		}
		ks := protocol.KeyState{Key: keys[i]}
		ks.Entry.Found, _ = a[0].(bool)
		ks.Entry.Version, _ = a[2].(int64)
		ks.Pending, _ = a[3].(string)
		ks.Next.Found, _ = a[4].(bool)
		ks.Next.Version, _ = a[6].(int64)
		if ks.Entry.Found {
			if ks.Entry.Value, err = valueOf(a[1]); err != nil {
				return nil, err
			}
		}
		if ks.Next.Found {
			if ks.Next.Value, err = valueOf(a[5]); err != nil {
				return nil, err
			}
		}
		out[i] = ks
	}
	return out, nil
}

// wireValue sends a value in the XML-RPC type it was stored as.
func wireValue(v protocol.Value) any {
	if v.Binary {
		return v.Data
	}
	return string(v.Data)
}

func valueOf(v any) (protocol.Value, error) {
	switch x := v.(type) {
	case string:
		return protocol.Value{Data: []byte(x)}, nil
	case []byte:
		return protocol.Value{Data: x, Binary: true}, nil
	}
	return protocol.Value{}, fmt.Errorf("want a string or base64 value, got %T", v)
}
