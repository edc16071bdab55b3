package rpc

import (
	"log/slog"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
)

// The observer hears of every answered call, with the method only when it
// is registered and the code of the fault sent (0 for a result).
func TestObserver(t *testing.T) {
	var (
		mu  sync.Mutex
		got []CallInfo
	)
	s := NewServer(Limits{}, slog.New(slog.DiscardHandler))
	for _, m := range testMethods() {
		s.Register(m)
	}
	s.SetAuthorizer(func(method string, _ Presented) error {
		if method == "first" {
			return Faultf(NotAuthorised, "no")
		}
		return nil
	})
	s.SetObserver(func(ci CallInfo) {
		if ci.Duration <= 0 {
			t.Errorf("%+v: no duration", ci)
		}
		mu.Lock()
		defer mu.Unlock()
		got = append(got, CallInfo{Method: ci.Method, Code: ci.Code})
	})
	ts := httptest.NewServer(s)
	defer ts.Close()

	for _, body := range []string{
		encodeCall(t, "add", 1, 2),
		encodeCall(t, "fail", Conflict),
		encodeCall(t, "nan"),
		encodeCall(t, "first", "x"),
		encodeCall(t, "made.up.name"),
		"not XML",
		encodeCall(t, "system.multicall", []any{multicallEntry("add", 1, 1), multicallEntry("other.made.up"), "junk"}),
	} {
		post(t, ts.URL, body)
	}
	want := []CallInfo{
		{Method: "add", Code: 0},
		{Method: "fail", Code: Conflict},
		{Method: "nan", Code: InternalError},
		{Method: "first", Code: NotAuthorised},
		{Method: "", Code: MethodNotFound},
		{Method: "", Code: ParseError},
		{Method: "add", Code: 0}, {Method: "", Code: MethodNotFound}, {Method: "", Code: InvalidParams}, // the entries...
		{Method: "system.multicall", Code: 0}, // ...then the multicall itself
	}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("observed\n%v\nwant\n%v", got, want)
	}
}
