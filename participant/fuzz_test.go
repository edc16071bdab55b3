package participant

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/twopc/twopc/internal/rpc"
)

// FuzzDecodeBatchCall feeds arbitrary methodCall documents through the
// XML-RPC decoder and the participant's decoding of batch entries (what
// a prepare payload becomes). It must never panic, and an entry that
// decodes must encode back to an entry that decodes to the same Call.
func FuzzDecodeBatchCall(f *testing.F) {
	for _, calls := range [][]Call{
		{{Kind: CallPrepare, TxID: "1.1", Write: Write{Key: "k", Op: OpPut, Value: Value{Data: []byte("v")}}}},
		{{Kind: CallPrepare, TxID: "1.2", Write: Write{Key: "b", Op: OpPut, Value: Value{Data: []byte{0, 1}, Binary: true}}},
			{Kind: CallCommit, TxID: "1.1"}, {Kind: CallAbort, TxID: "1.2"}, {Kind: CallRead, Key: "k"}},
		{{Kind: CallPrepare, TxID: "1.3", Write: Write{Key: "ü <&>", Op: OpDelete, Value: Value{Data: []byte{}}}}},
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

// normalise turns what encodeCall builds into what the decoder returns
// ([]any, []byte stays []byte), as a trip over the wire would.
func normalise(v []any) any {
	out := make([]any, len(v))
	for i, x := range v {
		switch y := x.(type) {
		case string, []byte:
			out[i] = y
		default:
			panic(fmt.Sprintf("unexpected %T", x))
		}
	}
	return out
}
