package rpc

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

// BenchmarkStreamCall is one call of about 2 KB over a stream on
// loopback, as a coordinator's batch to a participant: its allocations
// per call are the figure to watch (-benchmem), time being mostly the
// loopback's.
func BenchmarkStreamCall(b *testing.B) {
	_, ts, _ := streamServer(b, true)
	c, _, _ := streamClient(ts.URL, streamToken)
	batch := make([]any, 20)
	for i := range batch {
		batch[i] = []any{"prepare", fmt.Sprintf("1.%d", i), []any{[]any{}, []any{[]any{"put", "k0000001", "0123456789012345678901234567890123456789012345678901234567890123"}}, []any{}}}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Call(b.Context(), "echo", batch); err != nil {
			b.Fatal(err)
		}
	}
}

// A call's body reads the document whole, then nothing once closed (its
// buffer is back in the pool), and a Close racing a Read leaves the read
// with the document's bytes or the end, never another's (run with -race).
func TestCallBodyGivesItsBufferBackOnClose(t *testing.T) {
	b, err := encodeCallBody("echo", []any{"abc"})
	if err != nil {
		t.Fatal(err)
	}
	want := b.r.Len()
	got, err := io.ReadAll(b)
	if err != nil || len(got) != want || !bytes.Contains(got, []byte("<string>abc</string>")) {
		t.Fatalf("read %q, %v; want the %d bytes of the document", got, err, want)
	}
	b.Close()
	b.Close()
	if b.e != nil || b.Len() != 0 {
		t.Fatal("a closed body kept its encoder or bytes")
	}
	for range 200 {
		b, err := encodeCallBody("echo", []any{strings.Repeat("x", 4096)})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan []byte)
		go func() {
			got, _ := io.ReadAll(b)
			done <- got
		}()
		b.Close()
		other, _ := encodeCallBody("echo", []any{strings.Repeat("y", 4096)}) // may reuse the buffer
		got := <-done
		if bytes.Contains(got, []byte("y")) {
			t.Fatal("a body read another call's bytes after Close")
		}
		other.Close()
	}
}

// A reply's body reads the reply, and nothing once closed, even
// when the next reply has taken its buffer; closing twice gives the
// buffer back once, so two replies never share one.
func TestReplyBodyGivesItsBufferBackOnClose(t *testing.T) {
	first := newReplyBody(3)
	copy(first.buf, "abc")
	first.Reset(first.buf)
	got := make([]byte, 1)
	if n, _ := first.Read(got); n != 1 || got[0] != 'a' {
		t.Fatalf("read %q, want a", got[:n])
	}
	first.Close()
	first.Close()
	second, third := newReplyBody(3), newReplyBody(3)
	if &second.buf[0] == &third.buf[0] {
		t.Fatal("two open replies share a buffer: a body closed twice was pooled twice")
	}
	copy(second.buf, "xyz")
	second.Reset(second.buf)
	if n, err := first.Read(make([]byte, 3)); n != 0 || err != io.EOF {
		t.Fatalf("a closed body read %d bytes, %v; want 0, EOF", n, err)
	}
}
