package api

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/protocol"
)

// FuzzDecodeTxn feeds arbitrary methodCall documents through the XML-RPC
// decoder and txn's decoding. It must never panic; a transaction that
// decodes must be valid, and encode back (EncodeTxn, what the Go client
// sends) to params that decode to the same transaction.
func FuzzDecodeTxn(f *testing.F) {
	lim := Limits{MaxKeyBytes: 16, MaxValueBytes: 16, MaxCompares: 4, MaxOps: 4}
	val := func(s string) protocol.Value { return protocol.Value{Data: []byte(s)} }
	for _, t := range []*protocol.Txn{
		{Success: []protocol.Op{{Kind: protocol.OpPut, Key: "k", Value: val("v")}}},
		{Compares: []protocol.Compare{
			{Key: "a", Target: protocol.TargetValue, Op: protocol.Less, Value: protocol.Value{Data: []byte{0, 1}, Binary: true}},
			{Key: "b", Target: protocol.TargetVersion, Op: protocol.NotEqual, Version: -3},
			{Key: "c", Target: protocol.TargetExists, Op: protocol.Equal, Exists: true}},
			Success: []protocol.Op{{Kind: protocol.OpDelete, Key: "a"}, {Kind: protocol.OpGet, Key: "a"}},
			Failure: []protocol.Op{{Kind: protocol.OpGet, Key: "ü <&>"}}},
	} {
		var b bytes.Buffer
		if err := rpc.EncodeCall(&b, "txn", EncodeTxn(t)...); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		_, params, err := rpc.DecodeCall(bytes.NewReader(doc), rpc.DefaultLimits())
		if err != nil {
			return
		}
		txn, err := decodeTxn(params, lim)
		if err != nil {
			if _, ok := err.(*rpc.Fault); !ok {
				t.Fatalf("a refusal that is not a fault: %v", err)
			}
			return
		}
		if err := txn.Validate(protocol.Limits{MaxCompares: lim.MaxCompares, MaxOps: lim.MaxOps}); err != nil {
			t.Fatalf("decoded an invalid transaction: %v", err)
		}
		var b bytes.Buffer
		if err := rpc.EncodeCall(&b, "txn", EncodeTxn(txn)...); err != nil {
			t.Fatalf("cannot encode %+v: %v", txn, err)
		}
		_, params2, err := rpc.DecodeCall(&b, rpc.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeTxn(params2, lim)
		if err != nil || !reflect.DeepEqual(normTxn(again), normTxn(txn)) {
			t.Fatalf("%+v re-encoded to %+v (%v)", txn, again, err)
		}
	})
}

// normTxn makes empty and nil slices alike, as the wire does.
func normTxn(t *protocol.Txn) protocol.Txn {
	n := *t
	if len(n.Compares) == 0 {
		n.Compares = nil
	}
	if len(n.Success) == 0 {
		n.Success = nil
	}
	if len(n.Failure) == 0 {
		n.Failure = nil
	}
	for _, ops := range [][]protocol.Op{n.Success, n.Failure} {
		for i := range ops {
			if ops[i].Value.Data == nil {
				ops[i].Value.Data = []byte{}
			}
		}
	}
	for i := range n.Compares {
		if n.Compares[i].Value.Data == nil {
			n.Compares[i].Value.Data = []byte{}
		}
	}
	return n
}
