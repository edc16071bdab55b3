package rpc

import "testing"

// FuzzFastDecode checks, for any body, that DecodeCall and DecodeResponse
// (fast path, then fallback) answer exactly what the slow path alone
// answers: the same values, or the same error with the same message. It
// runs each body under the default limits, under tight depth and params
// limits, and under a body limit it exceeds; and, because most mutants of
// a whole document are refused early, it also tries the body as the
// content of a <value> in a call and in a response, where the fast path
// reads it all. The seed corpus (testdata/fuzz/FuzzFastDecode) holds
// FuzzDecodeCall's seeds, documents and values as Python, kolo and we
// write them, and what the fuzzer found.
func FuzzFastDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		tight := Limits{MaxDepth: 2, MaxParams: 2}
		for _, lim := range []Limits{DefaultLimits(), tight} {
			checkSameCall(t, body, lim)
			checkSameResponse(t, body, lim)
		}
		if len(body) > 1 {
			short := Limits{MaxBodyBytes: int64(len(body) - 1)}
			checkSameCall(t, body, short)
			checkSameResponse(t, body, short)
		}
		checkSameCall(t, []byte(oneParam(string(body))), tight)
		checkSameResponse(t, []byte(responseValue(string(body))), DefaultLimits())
	})
}

// responseValue wraps value XML in a methodResponse.
func responseValue(value string) string {
	return "<methodResponse><params><param><value>" + value + "</value></param></params></methodResponse>"
}
