package peer

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/protocol"
)

// Scan and install carry every field over the wire: binary and empty
// values, versions, pending entries and deletions; bad parameters get a
// fault, not a crash.
func TestCatchUpOverTheWire(t *testing.T) {
	src, sc, _ := serve(t)
	dst, dc, _ := serve(t)
	bin := protocol.Value{Data: []byte{0, 1, 255}, Binary: true}
	for i, tx := range []*protocol.Txn{
		{Success: []protocol.Op{{Kind: protocol.OpPut, Key: "b", Value: bin}, {Kind: protocol.OpPut, Key: "e", Value: protocol.Value{Data: []byte{}}}}},
		{Success: []protocol.Op{{Kind: protocol.OpPut, Key: "b", Value: protocol.Value{Data: []byte("v2")}}}},
	} {
		id := fmt.Sprintf("1.%d", i+1)
		if _, err := src.Prepare(ctx, id, tx); err != nil {
			t.Fatal(err)
		}
		if err := src.Commit(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.Prepare(ctx, "1.9", put("a", "pending")); err != nil {
		t.Fatal(err)
	}
	states, more, err := sc.Scan(ctx, "", 10)
	if err != nil || more {
		t.Fatalf("scan: %v, more %v", err, more)
	}
	if got := fmt.Sprintf("%+v", states); got != "[{Key:a Entry:{Found:false Value:{Data:[] Binary:false} Version:0} Pending:1.9 Next:{Found:true Value:{Data:[112 101 110 100 105 110 103] Binary:false} Version:1}} "+
		"{Key:b Entry:{Found:true Value:{Data:[118 50] Binary:false} Version:2} Pending: Next:{Found:false Value:{Data:[] Binary:false} Version:0}} "+
		"{Key:e Entry:{Found:true Value:{Data:[] Binary:false} Version:1} Pending: Next:{Found:false Value:{Data:[] Binary:false} Version:0}}]" {
		t.Fatalf("scan: %s", got)
	}
	if err := dc.Install(ctx, &protocol.Install{Reset: true, Fence: "2.1"}); err != nil {
		t.Fatal(err)
	}
	in := &protocol.Install{Fence: "2.1", Writes: []protocol.Write{{Key: "b", Entry: states[1].Entry}, {Key: "e", Entry: states[2].Entry},
		{Key: "z", Entry: protocol.Entry{Found: true, Value: bin, Version: 7}}}}
	if err := dc.Install(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := dc.Install(ctx, &protocol.Install{Fence: "2.1", Writes: []protocol.Write{{Key: "z"}}}); err != nil {
		t.Fatal(err)
	}
	if err := src.Abort(ctx, "1.9"); err != nil {
		t.Fatal(err)
	}
	d1, _ := src.Digest(ctx)
	d2, _ := dst.Digest(ctx)
	if d1 != d2 {
		t.Fatalf("digests differ after the copy: %+v, %+v", d1, d2)
	}
	if v, err := dc.Prepare(ctx, "1.10", put("a", "x")); err != nil || v.Kind != protocol.VoteNo {
		t.Fatalf("prepare behind the fence: %+v %v", v, err)
	}
	var f *rpc.Fault
	if _, _, err := sc.Scan(ctx, "", MaxScan+1); !errors.As(err, &f) || f.Code != rpc.InvalidParams {
		t.Fatalf("scan past MaxScan: %v", err)
	}
	for _, bad := range [][]byte{{200}, {1, 'k', 0xff}, {1, 'k', flagFound, 9, 'v'}, {1, 'k', flagPending, 0}} {
		if _, err := sc.rpc.Call(ctx, "install", true, "1.1", bad); !errors.As(err, &f) || f.Code != rpc.InvalidParams {
			t.Fatalf("malformed install %v: %v", bad, err)
		}
	}
	if _, err := sc.rpc.Call(ctx, "install", true, "1.1", []any{}); !errors.As(err, &f) || f.Code != rpc.InvalidParams {
		t.Fatalf("install with an array: %v", err)
	}
}

// FuzzParsePage: a page never panics the parser, and what parses
// re-encodes to a page that parses to the same states.
func FuzzParsePage(f *testing.F) {
	bin := protocol.Value{Data: []byte{0, 1, 255}, Binary: true}
	f.Add(appendPage(nil, []protocol.KeyState{
		{Key: "a", Entry: protocol.Entry{Found: true, Value: bin, Version: 3}},
		{Key: "b", Pending: "2.7", Next: protocol.Entry{Found: true, Value: protocol.Value{Data: []byte("x")}, Version: -1}},
		{Key: "", Pending: "2.8"},
	}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		states, err := parsePage(b)
		if err != nil {
			return
		}
		again, err := parsePage(appendPage(nil, states))
		if err != nil || !reflect.DeepEqual(again, states) {
			t.Fatalf("parsePage(%x) = %+v, which encodes to a page that parses to %+v, %v", b, states, again, err)
		}
	})
}
