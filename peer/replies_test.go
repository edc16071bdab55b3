package peer

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/protocol"
)

// replyBatch is a batch of one call of each kind, and replyOf what a
// participant answers to it (written by appendResult, as the server does).
func replyBatch() ([]*pending, []protocol.CallResult) {
	bin := protocol.Value{Data: []byte{0, 0xff}, Binary: true}
	calls := []protocol.Call{
		{Kind: protocol.MsgPrepare, TxID: "1.1"},
		{Kind: protocol.MsgPrepare, TxID: "1.2"},
		{Kind: protocol.MsgPrepare, TxID: "1.3"},
		{Kind: protocol.MsgCommit, TxID: "1.0"},
		{Kind: protocol.MsgAbort, TxID: "0.9"},
		{Kind: protocol.MsgRead, Keys: []string{"a", "b"}},
	}
	results := []protocol.CallResult{
		{Vote: protocol.Vote{Kind: protocol.VoteYes, Succeeded: true, Results: []protocol.Result{
			{Kind: protocol.OpPut, Version: 1 << 40}, {Kind: protocol.OpDelete, Existed: true},
			{Kind: protocol.OpGet, Found: true, Version: -7, Value: bin},
			{Kind: protocol.OpGet, Found: true, Version: 3, Value: protocol.Value{Data: []byte("x <&> \r")}},
			{Kind: protocol.OpGet}}}},
		{Vote: protocol.Vote{Kind: protocol.VoteNo, Conflict: true, Reason: "key a is held by 1.0"}},
		{Vote: protocol.Vote{Kind: protocol.VoteNo, TooLarge: true, Reason: "too big"}},
		{}, {},
		{Keys: []protocol.KeyState{
			{Key: "a", Entry: protocol.Entry{Found: true, Value: bin, Version: 2}, Pending: "1.1", Next: protocol.Entry{Found: true, Value: protocol.Value{Data: []byte("n")}, Version: 3}},
			{Key: "b"}}},
	}
	batch := make([]*pending, len(calls))
	for i, c := range calls {
		batch[i] = &pending{call: c}
	}
	return batch, results
}

// replyDoc is the methodResponse a participant sends for results.
func replyDoc(t testing.TB, batch []*pending, results []protocol.CallResult) []byte {
	var w rpc.ValueWriter
	w.OpenArray()
	for i, p := range batch {
		appendResult(&w, p.call, results[i])
	}
	w.CloseArray()
	var doc bytes.Buffer
	if err := rpc.EncodeResponse(&doc, w.Raw()); err != nil {
		t.Fatal(err)
	}
	return doc.Bytes()
}

// decodeReplies is the batcher's other way: a tree, then decodeResult.
func decodeReplies(doc []byte, batch []*pending) ([]protocol.CallResult, error) {
	v, err := rpc.DecodeResponse(bytes.NewReader(doc), rpc.DefaultLimits())
	if err != nil {
		return nil, err
	}
	list, ok := v.([]any)
	if !ok || len(list) != len(batch) {
		return nil, errShape
	}
	out := make([]protocol.CallResult, len(batch))
	for i, p := range batch {
		out[i] = decodeResult(p.call, list[i])
	}
	return out, nil
}

var errShape = errors.New("not a reply of the batch's length")

// The usual replies are read without a tree, to what the tree would give;
// a fault entry sends the batch to the tree.
func TestReadRepliesAsDecoded(t *testing.T) {
	batch, results := replyBatch()
	doc := replyDoc(t, batch, results)
	got := make([]protocol.CallResult, len(batch))
	read := rpc.ReadResponse(doc, rpc.DefaultLimits(), func(r *rpc.ValueReader) bool { return readReplies(r, batch, got) })
	if !read {
		t.Fatal("the usual replies were not read")
	}
	want, err := decodeReplies(doc, batch)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(got, results) {
		t.Fatalf("read %+v\ndecoded %+v\nsent %+v", got, want, results)
	}

	results[3] = protocol.CallResult{Err: rpc.Faultf(rpc.InvalidParams, "call 4: bad")}
	doc = replyDoc(t, batch, results)
	if rpc.ReadResponse(doc, rpc.DefaultLimits(), func(r *rpc.ValueReader) bool { return readReplies(r, batch, got) }) {
		t.Fatal("a fault entry was read")
	}
}

// FuzzReadReplies: whatever a batch reply holds, what readReplies reads
// is what decodeResult makes of the same reply.
func FuzzReadReplies(f *testing.F) {
	batch, results := replyBatch()
	f.Add(replyDoc(f, batch, results), uint8(0))
	f.Add(replyDoc(f, batch[:1], results[:1]), uint8(1))
	f.Add(replyDoc(f, batch[3:], results[3:]), uint8(3))
	f.Fuzz(func(t *testing.T, doc []byte, from uint8) {
		b := batch[int(from)%len(batch):]
		got := make([]protocol.CallResult, len(b))
		if !rpc.ReadResponse(doc, rpc.DefaultLimits(), func(r *rpc.ValueReader) bool { return readReplies(r, b, got) }) {
			return
		}
		want, err := decodeReplies(doc, b)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("read %+v, decoded %+v (%v)", got, want, err)
		}
	})
}

// Every reply one edit away from a real one (each text replaced, each
// scalar's type changed, each value dropped or doubled) is read as the
// tree reads it, or not read at all: readReplies accepts nothing the
// tree would decode differently. The fuzz target samples further.
func TestReadRepliesNeighbours(t *testing.T) {
	batch, results := replyBatch()
	doc := string(replyDoc(t, batch, results))
	texts := []string{"", "0", "1", "-1", "2147483648", "9223372036854775808", " 5 ", "yes", "no", "put", "get", "AA==", "x"}
	docs := neighbours(doc, texts)
	read := 0
	for _, d := range docs {
		got := make([]protocol.CallResult, len(batch))
		if !rpc.ReadResponse([]byte(d), rpc.DefaultLimits(), func(r *rpc.ValueReader) bool { return readReplies(r, batch, got) }) {
			continue
		}
		read++
		want, err := decodeReplies([]byte(d), batch)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("reply %s\nread as %+v\ndecoded as %+v (%v)", d, got, want, err)
		}
	}
	t.Logf("%d replies one edit away, %d of them read", len(docs), read)
}
