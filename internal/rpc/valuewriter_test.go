package rpc

import (
	"bytes"
	"context"
	"math"
	"reflect"
	"strings"
	"testing"
)

// writeTree writes v, a tree of the types ValueWriter has methods for,
// with a ValueWriter: what package peer does by hand for its batches.
func writeTree(w *ValueWriter, v any) {
	switch x := v.(type) {
	case string:
		w.String(x)
	case []byte:
		w.Base64(x)
	case int64:
		w.Int(x)
	case bool:
		w.Bool(x)
	case []any:
		w.OpenArray()
		for _, e := range x {
			writeTree(w, e)
		}
		w.CloseArray()
	default:
		panic(x)
	}
}

// A ValueWriter's Raw goes out byte for byte as the same values given as
// a tree would, into a call and into a reply written through a sink in
// pieces (a Raw larger than one piece), and reads back as those values.
func TestValueWriterWritesWhatTheEncoderWrites(t *testing.T) {
	tree := []any{"plain", int64(7), int64(math.MaxInt32 + 1), int64(math.MinInt64), true, false,
		[]byte{0, 1, 2, 255}, []byte{}, []any{}, []any{[]any{"nested", int64(-1)}}}
	for _, s := range hardStrings {
		tree = append(tree, s)
	}
	tree = append(tree, []byte(strings.Repeat("b", 3*flushAt)))
	var w ValueWriter
	writeTree(&w, tree)
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	var want, got bytes.Buffer
	if err := EncodeCall(&want, "m", "first", tree); err != nil {
		t.Fatal(err)
	}
	if err := EncodeCall(&got, "m", "first", w.Raw()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("call differs: %d bytes, want %d", got.Len(), want.Len())
	}
	_, params, err := DecodeCall(&got, DefaultLimits())
	if err != nil || len(params) != 2 || !reflect.DeepEqual(params[1], tree) {
		t.Fatalf("decoded %d params, %v", len(params), err)
	}

	var sunk bytes.Buffer
	e := getEncoder()
	defer putEncoder(e)
	e.reset(&sunk)
	if err := e.response(w.Raw()); err != nil {
		t.Fatal(err)
	}
	e.flush()
	want.Reset()
	if err := EncodeResponse(&want, tree); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sunk.Bytes(), want.Bytes()) {
		t.Fatalf("reply through a sink differs: %d bytes, want %d", sunk.Len(), want.Len())
	}
}

// A string XML cannot carry is kept as the writer's error, the first one
// only, until Reset.
func TestValueWriterKeepsFirstError(t *testing.T) {
	var w ValueWriter
	w.OpenArray()
	w.String("fine")
	w.String("bad \xff")
	w.StringBytes([]byte("nul \x00"))
	w.CloseArray()
	if err := w.Err(); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("error %v, want the first string's (not valid UTF-8)", err)
	}
	w.Reset()
	w.String("fine")
	if err := w.Err(); err != nil || w.Len() == 0 {
		t.Fatalf("after Reset: %v, %d bytes", err, w.Len())
	}
}

// A fault entry is the struct the encoder writes for the same map, and a
// message XML cannot carry still gets out, with U+FFFD in its place.
func TestValueWriterFault(t *testing.T) {
	var w ValueWriter
	w.Fault(InvalidParams, "call 2: bad & <odd>")
	var want, got bytes.Buffer
	if err := EncodeResponse(&want, map[string]any{"faultCode": InvalidParams, "faultString": "call 2: bad & <odd>"}); err != nil {
		t.Fatal(err)
	}
	if err := EncodeResponse(&got, w.Raw()); err != nil || got.String() != want.String() {
		t.Fatalf("fault entry:\n%s\nwant\n%s (%v)", got.String(), want.String(), err)
	}
	w.Reset()
	w.Fault(InternalError, "bytes \xff\x00 here")
	got.Reset()
	if err := EncodeResponse(&got, w.Raw()); err != nil || w.Err() != nil {
		t.Fatal(err, w.Err())
	}
	v, err := DecodeResponse(&got, DefaultLimits())
	if m, ok := v.(map[string]any); err != nil || !ok || m["faultString"] != "bytes \ufffd\ufffd here" {
		t.Fatalf("fault with bad bytes decoded to %#v, %v", v, err)
	}
}

// kolo's encoder cannot write a Raw: a client that uses it says so
// before sending anything.
func TestRawNeedsOwnEncoder(t *testing.T) {
	var w ValueWriter
	w.String("x")
	_, err := NewClient("http://127.0.0.1:1/RPC2", nil).Call(context.Background(), "m", w.Raw())
	if err == nil || !strings.Contains(err.Error(), "OwnEncoder") {
		t.Fatalf("a Raw through kolo: %v", err)
	}
}
