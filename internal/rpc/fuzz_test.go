package rpc

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzDecodeCall checks, for any body, that DecodeCall does not panic,
// fails only with a *Fault, and that what it decodes survives
// EncodeCall and a second DecodeCall unchanged. The seed corpus is in
// testdata/fuzz/FuzzDecodeCall, with the inputs the fuzzer found.
func FuzzDecodeCall(f *testing.F) {
	lim := DefaultLimits()
	// The re-encoded call may be longer than the input (an untyped value
	// gains <string>), so only the size limit is relaxed for the check.
	relaxed := lim
	relaxed.MaxBodyBytes = 1 << 30
	f.Fuzz(func(t *testing.T, body []byte) {
		method, params, err := DecodeCall(bytes.NewReader(body), lim)
		if err != nil {
			if _, ok := err.(*Fault); !ok {
				t.Fatalf("error of type %T, want *Fault: %v", err, err)
			}
			return
		}
		var buf bytes.Buffer
		if err := EncodeCall(&buf, method, params...); err != nil {
			t.Fatalf("decoded %q %#v, but cannot encode it: %v", method, params, err)
		}
		method2, params2, err := DecodeCall(bytes.NewReader(buf.Bytes()), relaxed)
		if err != nil {
			t.Fatalf("re-encoded call does not decode: %v\n%s", err, buf.Bytes())
		}
		if method2 != method || !reflect.DeepEqual(params2, params) {
			t.Fatalf("round trip changed the call:\nfirst  %q %#v\nsecond %q %#v", method, params, method2, params2)
		}
	})
}
