package protocol

import (
	"slices"
	"testing"
)

// KeySets gives what Keys and WriteKeys give, and ReadOnly says whether
// the latter is empty, for transactions with and without reads.
func TestKeySets(t *testing.T) {
	put := func(k string) Op { return Op{Kind: OpPut, Key: k} }
	del := func(k string) Op { return Op{Kind: OpDelete, Key: k} }
	get := func(k string) Op { return Op{Kind: OpGet, Key: k} }
	for i, txn := range []*Txn{
		{Success: []Op{put("b"), put("a"), del("b")}},
		{Success: []Op{put("a")}, Failure: []Op{del("c")}},
		{Success: []Op{put("a"), get("b")}},
		{Compares: []Compare{{Key: "c"}}, Success: []Op{put("a")}},
		{Success: []Op{get("a")}, Failure: []Op{get("b")}},
		{},
	} {
		keys, writes := txn.KeySets()
		if !slices.Equal(keys, txn.Keys()) || !slices.Equal(writes, txn.WriteKeys()) {
			t.Errorf("txn %d: KeySets = %v, %v; Keys %v, WriteKeys %v", i, keys, writes, txn.Keys(), txn.WriteKeys())
		}
		if txn.ReadOnly() != (len(txn.WriteKeys()) == 0) {
			t.Errorf("txn %d: ReadOnly = %v with write keys %v", i, txn.ReadOnly(), txn.WriteKeys())
		}
	}
}
