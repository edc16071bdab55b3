package peer

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/protocol"
)

// FuzzDecodeBatchCall feeds arbitrary methodCall documents through the
// XML-RPC decoder and the participant's decoding of batch entries (what
// a prepare payload becomes). It must never panic, and an entry that
// decodes must encode back to an entry that decodes to the same Call.
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
		entries := make([]any, len(calls))
		for i, c := range calls {
			entries[i] = encodeCall(c)
		}
		var b bytes.Buffer
		if err := rpc.EncodeCall(&b, "batch", entries); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
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
			again, err := decodeCall(normalise(encodeCall(c)))
			if err != nil || !reflect.DeepEqual(again, c) {
				t.Fatalf("entry %v decoded to %+v, re-encoded to %+v (%v)", e, c, again, err)
			}
		}
	})
}

// normalise turns what encodeCall builds into what the decoder returns,
// as a trip over the wire would: every value the encoder writes comes
// back as the same Go value, so only the nesting needs no change.
func normalise(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalise(e)
		}
		return out
	case string, []byte, int64, bool:
		return x
	}
	panic(fmt.Sprintf("unexpected %T", v))
}
