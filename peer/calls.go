package peer

import (
	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/protocol"
)

// readCalls is the batch method's param as readBatch reads it.
type readCalls []protocol.Call

// readBatch reads a batch's calls with an rpc.ValueReader (the server's
// Method.ReadParam): no tree of any. It reads only well-formed calls,
// and gives up (false) at the first thing it does not expect: the batch
// is then decoded as a tree, and decodeCall says what is wrong with
// which call. So what this reads must be what decodeCall would make of
// the same request (TestReadBatchNeighbours and FuzzReadBatch check it).
func readBatch(r *rpc.ValueReader) (any, bool) {
	if !r.Array() {
		return nil, false
	}
	calls := readCalls{}
	for r.Next() {
		c, ok := readCall(r)
		if !ok {
			return nil, false
		}
		calls = append(calls, c)
	}
	return calls, !r.Failed()
}

// readCall reads ["prepare", txid, txn] | ["commit"|"abort", txid] |
// ["read", [key, ...]].
func readCall(r *rpc.ValueReader) (protocol.Call, bool) {
	var c protocol.Call
	if !r.Array() || !r.Next() {
		return c, false
	}
	name, ok := r.String()
	ok = ok && r.Next()
	if !ok {
		return c, false
	}
	switch name {
	case "prepare":
		c.Kind = protocol.MsgPrepare
		c.TxID, ok = r.String()
		ok = ok && r.Next()
		if ok {
			c.Txn, ok = readTxn(r)
		}
	case "commit", "abort":
		c.Kind = protocol.MsgCommit
		if name == "abort" {
			c.Kind = protocol.MsgAbort
		}
		c.TxID, ok = r.String()
	case "read":
		c.Kind = protocol.MsgRead
		ok = r.Array()
		c.Keys = []string{}
		for ok && r.Next() {
			var k string
			k, ok = r.String()
			c.Keys = append(c.Keys, k)
		}
	default:
		return c, false
	}
	return c, ok && !r.Failed() && !r.Next() && !r.Failed()
}

// readTxn reads [[compare, ...], [op, ...], [op, ...]].
func readTxn(r *rpc.ValueReader) (*protocol.Txn, bool) {
	t := &protocol.Txn{Compares: []protocol.Compare{}}
	if !r.Array() || !r.Next() || !r.Array() {
		return nil, false
	}
	for r.Next() {
		c, ok := readCompare(r)
		if !ok {
			return nil, false
		}
		t.Compares = append(t.Compares, c)
	}
	var ok bool
	if t.Success, ok = readOps(r); !ok {
		return nil, false
	}
	if t.Failure, ok = readOps(r); !ok {
		return nil, false
	}
	return t, !r.Failed() && !r.Next() && !r.Failed()
}

// readCompare reads [key, target, op, value|version|exists].
func readCompare(r *rpc.ValueReader) (protocol.Compare, bool) {
	var c protocol.Compare
	var target, op string
	ok := r.Array() && r.Next()
	if ok {
		c.Key, ok = r.String()
	}
	ok = ok && r.Next()
	if ok {
		target, ok = r.String()
	}
	ok = ok && r.Next()
	if ok {
		op, ok = r.String()
	}
	if !ok || !r.Next() {
		return c, false
	}
	var err error
	if c.Target, err = protocol.ParseTarget(target); err != nil {
		return c, false
	}
	if c.Op, err = protocol.ParseCmpOp(op); err != nil {
		return c, false
	}
	switch c.Target {
	case protocol.TargetValue:
		c.Value, ok = readValue(r, true)
	case protocol.TargetVersion:
		c.Version, ok = r.Int()
	case protocol.TargetExists:
		c.Exists, ok = r.Bool()
	default:
		return c, false
	}
	return c, ok && !r.Next() && !r.Failed()
}

// readOps reads the next element of the array being read: [op, ...],
// each ["put", key, value] | ["delete"|"get", key].
func readOps(r *rpc.ValueReader) ([]protocol.Op, bool) {
	ops := []protocol.Op{}
	if !r.Next() || !r.Array() {
		return nil, false
	}
	for r.Next() {
		var o protocol.Op
		ok := r.Array() && r.Next()
		var name string
		if ok {
			name, ok = r.String()
		}
		if !ok {
			return nil, false
		}
		var err error
		if o.Kind, err = protocol.ParseOpKind(name); err != nil || !r.Next() {
			return nil, false
		}
		if o.Key, ok = r.String(); !ok {
			return nil, false
		}
		if o.Kind == protocol.OpPut {
			if !r.Next() {
				return nil, false
			}
			if o.Value, ok = readValue(r, true); !ok {
				return nil, false
			}
		}
		if r.Next() || r.Failed() {
			return nil, false
		}
		ops = append(ops, o)
	}
	return ops, !r.Failed()
}
