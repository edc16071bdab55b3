package rpc

import (
	"reflect"
	"testing"
)

func multicallEntry(method string, params ...any) map[string]any {
	if params == nil {
		params = []any{}
	}
	return map[string]any{"methodName": method, "params": params}
}

func TestMulticall(t *testing.T) {
	ts, _ := newTestServer(t, Limits{})
	calls := []any{
		multicallEntry("add", 1, 2),
		multicallEntry("fail", NotFound),
		multicallEntry("first", "x"),
		"not a struct",
		map[string]any{"params": []any{}},
		map[string]any{"methodName": "first", "params": "x"},
		map[string]any{"methodName": "bad name!", "params": []any{}},
		multicallEntry("system.multicall", []any{multicallEntry("add", 1, 1)}),
		multicallEntry("nope"),
		multicallEntry("boom"),
		multicallEntry("nan"),
		multicallEntry("system.methodHelp", "add"),
		multicallEntry("add", 40, 2),
	}
	got, err := post(t, ts.URL, encodeCall(t, "system.multicall", calls))
	if err != nil {
		t.Fatal(err)
	}
	fault := func(code int64) map[string]any { return map[string]any{"faultCode": code} }
	want := []any{
		[]any{int64(3)},
		fault(NotFound),
		[]any{"x"},
		fault(InvalidParams),
		fault(InvalidParams),
		fault(InvalidParams),
		fault(InvalidRequest),
		fault(InvalidRequest),
		fault(MethodNotFound),
		fault(InternalError),
		fault(InternalError),
		[]any{"Adds two ints."},
		[]any{int64(42)},
	}
	results, ok := got.([]any)
	if !ok || len(results) != len(want) {
		t.Fatalf("got %#v, want %d entries", got, len(want))
	}
	for i, w := range want {
		wf, isFault := w.(map[string]any)
		if !isFault {
			if !reflect.DeepEqual(results[i], w) {
				t.Errorf("entry %d = %#v, want %#v", i+1, results[i], w)
			}
			continue
		}
		gf, ok := results[i].(map[string]any)
		if !ok || gf["faultCode"] != wf["faultCode"] {
			t.Errorf("entry %d = %#v, want faultCode %v", i+1, results[i], wf["faultCode"])
			continue
		}
		if s, ok := gf["faultString"].(string); !ok || s == "" {
			t.Errorf("entry %d: faultString %#v", i+1, gf["faultString"])
		}
	}
}

func TestMulticallWhole(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxMulticall = 3
	ts, _ := newTestServer(t, lim)

	calls := []any{multicallEntry("add", 1, 1), multicallEntry("add", 2, 2), multicallEntry("add", 3, 3)}
	got, err := post(t, ts.URL, encodeCall(t, "system.multicall", calls))
	if want := []any{[]any{int64(2)}, []any{int64(4)}, []any{int64(6)}}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("at the limit: got %#v, %v", got, err)
	}

	_, err = post(t, ts.URL, encodeCall(t, "system.multicall", append(calls, multicallEntry("add", 4, 4))))
	wantFault(t, err, TooLarge, "system.multicall of 4 calls exceeds the limit of 3")

	_, err = post(t, ts.URL, encodeCall(t, "system.multicall", "x"))
	wantFault(t, err, InvalidParams, "param 1 (calls): want array, got string")

	got, err = post(t, ts.URL, encodeCall(t, "system.multicall", []any{}))
	if err != nil || !reflect.DeepEqual(got, []any{}) {
		t.Errorf("empty batch: got %#v, %v", got, err)
	}
}
