package rpc

import (
	"bytes"
	"io"
	"testing"
)

// The benchmarks decode the documents that dominate the coordinator's
// profile: a client's put as Python sends it, a participant's reply to a
// batch of 64 prepares, and (on the participant) the batch call itself as
// kolo sends it. "fast" is DecodeCall/DecodeResponse as shipped; "slow" is
// encoding/xml alone.

func BenchmarkDecodeCall(b *testing.B) {
	for _, doc := range []struct {
		name string
		body []byte
	}{
		{"python_put", []byte(pythonDocs[0])},
		{"kolo_batch64", koloBatchCall(b, 64)},
	} {
		for _, path := range []struct {
			name   string
			decode func(io.Reader, Limits) (string, []any, error)
		}{{"fast", DecodeCall}, {"slow", decodeCallXML}} {
			b.Run(doc.name+"/"+path.name, func(b *testing.B) {
				lim := DefaultLimits()
				r := bytes.NewReader(doc.body)
				b.ReportAllocs()
				b.SetBytes(int64(len(doc.body)))
				for b.Loop() {
					r.Reset(doc.body)
					if _, _, err := path.decode(r, lim); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkDecodeResponse(b *testing.B) {
	body := batchReply(64)
	for _, path := range []struct {
		name   string
		decode func(io.Reader, Limits) (any, error)
	}{{"fast", DecodeResponse}, {"slow", decodeResponseXML}} {
		b.Run("batch64/"+path.name, func(b *testing.B) {
			lim := DefaultLimits()
			r := bytes.NewReader(body)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				r.Reset(body)
				if _, err := path.decode(r, lim); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeResponse encodes what a participant sends back for a
// batch of 64 prepares, what the coordinator answers to a put, and to a
// txn of 8 puts.
func BenchmarkEncodeResponse(b *testing.B) {
	replies := make([]any, 64)
	for i := range replies {
		replies[i] = []any{"yes", true, false, ""}
	}
	results := make([]any, 8)
	for i := range results {
		results[i] = map[string]any{"version": int64(i + 1)}
	}
	for _, doc := range []struct {
		name string
		v    any
	}{{"batch64", replies}, {"true", true}, {"txn8", map[string]any{"succeeded": true, "results": results}}} {
		b.Run(doc.name, func(b *testing.B) {
			var buf bytes.Buffer
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				if err := EncodeResponse(&buf, doc.v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
