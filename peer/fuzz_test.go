package peer

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/protocol"
)

// FuzzDecodeBatchCall feeds arbitrary methodCall documents through the
// XML-RPC decoder and the participant's decoding of batch entries (what
// a prepare payload becomes). It must never panic, and an entry that
// decodes must encode back (through the wire: appendCall, then the
// XML-RPC decoder) to an entry that decodes to the same Call.
func FuzzDecodeBatchCall(f *testing.F) {
	val := func(s string) protocol.Value { return protocol.Value{Data: []byte(s)} }
	for _, calls := range [][]protocol.Call{
		{{Kind: protocol.MsgPrepare, TxID: "1.1", Txn: put("k", "v")}},
		{{Kind: protocol.MsgPrepare, TxID: "1.2", Txn: &protocol.Txn{
			Compares: []protocol.Compare{{Key: "b", Target: protocol.TargetValue, Op: protocol.Less, Value: protocol.Value{Data: []byte{0, 1}, Binary: true}},
				{Key: "c", Target: protocol.TargetVersion, Op: protocol.NotEqual, Version: -3}, {Key: "d", Target: protocol.TargetExists, Exists: true}},
			Success: []protocol.Op{{Kind: protocol.OpPut, Key: "b", Value: protocol.Value{Data: []byte{0, 1}, Binary: true}}, {Kind: protocol.OpGet, Key: "c"}},
			Failure: []protocol.Op{{Kind: protocol.OpDelete, Key: "d"}}}},
			{Kind: protocol.MsgCommit, TxID: "1.1"}, {Kind: protocol.MsgAbort, TxID: "1.2"}, {Kind: protocol.MsgRead, Keys: []string{"k", "ü"}}},
		{{Kind: protocol.MsgPrepare, TxID: "1.3", Txn: &protocol.Txn{Success: []protocol.Op{{Kind: protocol.OpPut, Key: "ü <&>", Value: val("")}}}}},
	} {
		f.Add(callDoc(f, calls))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		_, params, err := rpc.DecodeCall(bytes.NewReader(doc), rpc.DefaultLimits())
		if err != nil || len(params) != 1 {
			return
		}
		list, ok := params[0].([]any)
		if !ok {
			return
		}
		for _, e := range list {
			c, err := decodeCall(e)
			if err != nil {
				continue
			}
			again, err := decodeCall(wireCall(t, c))
			if err != nil || !reflect.DeepEqual(again, c) {
				t.Fatalf("entry %v decoded to %+v, re-encoded to %+v (%v)", e, c, again, err)
			}
		}
	})
}
