package peer

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/protocol"
)

// callBatch is a batch of every kind of call, with every kind of compare
// and op, and binary values.
func callBatch() []protocol.Call {
	bin := protocol.Value{Data: []byte{0, 1, 255}, Binary: true}
	return []protocol.Call{
		{Kind: protocol.MsgPrepare, TxID: "1.1", Txn: put("k", "v")},
		{Kind: protocol.MsgPrepare, TxID: "1.2", Txn: &protocol.Txn{
			Compares: []protocol.Compare{
				{Key: "b", Target: protocol.TargetValue, Op: protocol.Less, Value: bin},
				{Key: "c", Target: protocol.TargetVersion, Op: protocol.NotEqual, Version: -3},
				{Key: "d", Target: protocol.TargetExists, Op: protocol.Equal, Exists: true},
			},
			Success: []protocol.Op{{Kind: protocol.OpPut, Key: "b", Value: bin}, {Kind: protocol.OpGet, Key: "c"}},
			Failure: []protocol.Op{{Kind: protocol.OpDelete, Key: "d"}},
		}},
		{Kind: protocol.MsgCommit, TxID: "1.1"},
		{Kind: protocol.MsgAbort, TxID: "1.2"},
		{Kind: protocol.MsgRead, Keys: []string{"k", "ü <&>"}},
		{Kind: protocol.MsgRead, Keys: []string{}},
	}
}

// callDoc is calls as the coordinator sends them.
func callDoc(t testing.TB, calls []protocol.Call) []byte {
	t.Helper()
	var w rpc.ValueWriter
	w.OpenArray()
	for _, c := range calls {
		appendCall(&w, c)
	}
	w.CloseArray()
	var b bytes.Buffer
	if err := rpc.EncodeCall(&b, "batch", w.Raw()); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// decodeBatch is the server's other way: a tree, then decodeCall; nil if
// the request, or any of its calls, does not decode.
func decodeBatch(doc []byte) readCalls {
	_, params, err := rpc.DecodeCall(bytes.NewReader(doc), rpc.DefaultLimits())
	if err != nil {
		return nil
	}
	_, results, calls, _, err := batchCalls(params)
	if err != nil {
		return nil
	}
	for _, r := range results {
		if r.Err != nil {
			return nil
		}
	}
	if calls == nil {
		calls = []protocol.Call{}
	}
	return calls
}

// A batch is read without a tree to the calls the tree gives.
func TestReadBatchAsDecoded(t *testing.T) {
	calls := callBatch()
	doc := callDoc(t, calls)
	got, ok := rpc.ReadCall(doc, rpc.DefaultLimits(), readBatch)
	if !ok {
		t.Fatal("a batch of every kind of call was not read")
	}
	if want := decodeBatch(doc); !reflect.DeepEqual(got, want) || !bytes.Equal(callDoc(t, got.(readCalls)), doc) {
		t.Fatalf("read %+v\ndecoded %+v\nsent %+v", got, want, calls)
	}
}

// FuzzReadBatch: whatever a batch request holds, what readBatch reads is
// what the tree and decodeCall make of it.
func FuzzReadBatch(f *testing.F) {
	calls := callBatch()
	f.Add(callDoc(f, calls))
	f.Add(callDoc(f, calls[:1]))
	f.Add(callDoc(f, calls[2:]))
	f.Fuzz(func(t *testing.T, doc []byte) {
		got, ok := rpc.ReadCall(doc, rpc.DefaultLimits(), readBatch)
		if !ok {
			return
		}
		if want := decodeBatch(doc); !reflect.DeepEqual(got, want) {
			t.Fatalf("read %+v, decoded %+v", got, want)
		}
	})
}

// Every request one edit away from a real one (each text replaced, each
// scalar's type changed, each value dropped or doubled) is read as the
// tree and decodeCall read it, or not read at all. The fuzz target
// samples further.
func TestReadBatchNeighbours(t *testing.T) {
	doc := string(callDoc(t, callBatch()))
	texts := []string{"", "0", "1", "-1", "2147483648", " 5 ", "prepare", "commit", "read", "put", "get", "delete", "value", "version", "exists", "==", "<", "AA==", "x"}
	read := 0
	docs := neighbours(doc, texts)
	for _, d := range docs {
		got, ok := rpc.ReadCall([]byte(d), rpc.DefaultLimits(), readBatch)
		if !ok {
			continue
		}
		read++
		if want := decodeBatch([]byte(d)); !reflect.DeepEqual(got, want) {
			t.Fatalf("request %s\nread as %+v\ndecoded as %+v", d, got, want)
		}
	}
	t.Logf("%d requests one edit away, %d of them read", len(docs), read)
	if read < len(docs)/20 {
		t.Fatalf("only %d of %d read: the test no longer reaches the reader", read, len(docs))
	}
}

// neighbours are the documents one edit away from doc: each text between
// tags replaced by each of texts, each scalar element renamed, each
// <value> element dropped or doubled.
func neighbours(doc string, texts []string) []string {
	var docs []string
	for i := 0; i < len(doc); i++ {
		if doc[i] != '>' {
			continue
		}
		j := i + 1 + strings.IndexByte(doc[i+1:], '<')
		if j <= i {
			break
		}
		for _, x := range texts {
			docs = append(docs, doc[:i+1]+x+doc[j:])
		}
	}
	types := []string{"string", "int", "i4", "i8", "boolean", "double", "base64", "struct", "array"}
	for _, from := range types[:7] {
		for at := 0; ; {
			k := strings.Index(doc[at:], "<"+from+">")
			if k < 0 {
				break
			}
			k += at
			end := k + strings.Index(doc[k:], "</"+from+">")
			for _, to := range types {
				if to != from {
					docs = append(docs, doc[:k]+"<"+to+">"+doc[k+len(from)+2:end]+"</"+to+">"+doc[end+len(from)+3:])
				}
			}
			at = end
		}
	}
	for k := strings.Index(doc, "<value>"); k >= 0; {
		depth, end := 0, k
		for end < len(doc) {
			if strings.HasPrefix(doc[end:], "<value>") {
				depth++
			} else if strings.HasPrefix(doc[end:], "</value>") {
				if depth--; depth == 0 {
					end += len("</value>")
					break
				}
			}
			end++
		}
		docs = append(docs, doc[:k]+doc[end:], doc[:end]+doc[k:end]+doc[end:])
		next := strings.Index(doc[k+1:], "<value>")
		if next < 0 {
			break
		}
		k += 1 + next
	}
	return docs
}

// BenchmarkReadBatch reads a batch of 6 prepares of 8 puts and 6
// commits, as a participant under 8-put transactions gets them, with
// readBatch or as a tree then decodeCall:
//
//	go test -run - -bench ReadBatch -benchmem -count 6 ./peer
func BenchmarkReadBatch(b *testing.B) {
	var calls []protocol.Call
	for i := range 6 {
		t := &protocol.Txn{}
		for j := range 8 {
			t.Success = append(t.Success, protocol.Op{Kind: protocol.OpPut, Key: fmt.Sprintf("k%06d", 1000*i+j), Value: protocol.Value{Data: bytes.Repeat([]byte{'v'}, 64)}})
		}
		calls = append(calls, protocol.Call{Kind: protocol.MsgPrepare, TxID: fmt.Sprintf("7.%d", 100+i), Txn: t},
			protocol.Call{Kind: protocol.MsgCommit, TxID: fmt.Sprintf("7.%d", 90+i)})
	}
	doc := callDoc(b, calls)
	b.Run("reader", func(b *testing.B) {
		for range b.N {
			if _, ok := rpc.ReadCall(doc, rpc.DefaultLimits(), readBatch); !ok {
				b.Fatal("not read")
			}
		}
	})
	b.Run("tree", func(b *testing.B) {
		for range b.N {
			if decodeBatch(doc) == nil {
				b.Fatal("not decoded")
			}
		}
	})
}
