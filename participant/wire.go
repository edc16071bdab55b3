package participant

import (
	"fmt"

	"github.com/twopc/twopc/internal/rpc"
)

// The batch method's wire format. Arrays rather than structs: a batch can
// hold hundreds of entries, and member names would double the XML.
//
//	batch([call, ...]) -> [reply, ...]   one reply per call, same order
//	  ["prepare", txid, key, "put"|"delete", value string|base64]
//	      -> ["yes"|"no", existed bool, conflict bool, reason string]
//	  ["commit", txid], ["abort", txid] -> true
//	  ["read", key] -> [found bool, value, pending txid|"", pending_op, pending_value]
//	  a call that fails -> {faultCode int, faultString string}

func encodeCall(c Call) []any {
	switch c.Kind {
	case CallPrepare:
		return []any{"prepare", c.TxID, c.Write.Key, c.Write.Op.String(), wireValue(c.Write.Value)}
	case CallRead:
		return []any{"read", c.Key}
	}
	return []any{c.Kind.String(), c.TxID}
}

func decodeCall(v any) (Call, error) {
	a, ok := v.([]any)
	if !ok || len(a) == 0 {
		return Call{}, fmt.Errorf("want a non-empty array, got %T", v)
	}
	name, _ := a[0].(string)
	kind, err := parseCallKind(name)
	if err != nil {
		return Call{}, err
	}
	want := map[CallKind]int{CallPrepare: 5, CallCommit: 2, CallAbort: 2, CallRead: 2}[kind]
	if len(a) != want {
		return Call{}, fmt.Errorf("%s: want %d elements, got %d", name, want, len(a))
	}
	str := func(i int, what string) (string, error) {
		s, ok := a[i].(string)
		if !ok {
			return "", fmt.Errorf("%s: element %d (%s) must be a string, got %T", name, i+1, what, a[i])
		}
		return s, nil
	}
	c := Call{Kind: kind}
	if kind == CallRead {
		c.Key, err = str(1, "key")
		return c, err
	}
	if c.TxID, err = str(1, "txid"); err != nil || kind != CallPrepare {
		return c, err
	}
	if c.Write.Key, err = str(2, "key"); err != nil {
		return c, err
	}
	op, err := str(3, "op")
	if err != nil {
		return c, err
	}
	if c.Write.Op, err = ParseOp(op); err != nil {
		return c, err
	}
	c.Write.Value, err = valueOf(a[4])
	return c, err
}

func encodeReply(c Call, r Reply) any {
	if r.Err != nil {
		code := rpc.InternalError
		if f, ok := r.Err.(*rpc.Fault); ok {
			code = f.Code
		}
		return map[string]any{"faultCode": code, "faultString": r.Err.Error()}
	}
	switch c.Kind {
	case CallPrepare:
		vote := "no"
		if r.Vote.Yes {
			vote = "yes"
		}
		return []any{vote, r.Vote.Existed, r.Vote.Conflict, r.Vote.Reason}
	case CallRead:
		return []any{r.Read.Found, wireValue(r.Read.Value), r.Read.Pending, r.Read.Write.Op.String(), wireValue(r.Read.Write.Value)}
	}
	return true
}

func decodeReply(c Call, v any) (r Reply) {
	if m, ok := v.(map[string]any); ok {
		code, _ := m["faultCode"].(int64)
		msg, _ := m["faultString"].(string)
		return Reply{Err: &rpc.Fault{Code: int(code), Message: msg}}
	}
	bad := func() Reply {
		return Reply{Err: fmt.Errorf("participant: malformed %s reply %v", c.Kind, v)}
	}
	switch c.Kind {
	case CallPrepare:
		a, ok := v.([]any)
		if !ok || len(a) != 4 {
			return bad()
		}
		vote, _ := a[0].(string)
		if vote != "yes" && vote != "no" {
			return bad()
		}
		r.Vote.Yes = vote == "yes"
		r.Vote.Existed, _ = a[1].(bool)
		r.Vote.Conflict, _ = a[2].(bool)
		r.Vote.Reason, _ = a[3].(string)
	case CallRead:
		a, ok := v.([]any)
		if !ok || len(a) != 5 {
			return bad()
		}
		var err error
		r.Read.Found, _ = a[0].(bool)
		if r.Read.Value, err = valueOf(a[1]); err != nil {
			return bad()
		}
		r.Read.Pending, _ = a[2].(string)
		if r.Read.Pending != "" {
			op, _ := a[3].(string)
			if r.Read.Write.Op, err = ParseOp(op); err != nil {
				return bad()
			}
			if r.Read.Write.Value, err = valueOf(a[4]); err != nil {
				return bad()
			}
			r.Read.Write.Key = c.Key
		}
	default:
		if v != true {
			return bad()
		}
	}
	return r
}
