package rpc

import (
	"context"
	"net/http/httptest"
	"testing"
)

// A client's header reaches the handler on every call, multicall entries
// included, whichever encoder the client uses; a client without it sends
// none.
func TestClientHeaderReachesHandler(t *testing.T) {
	srv := NewServer(DefaultLimits(), nil)
	srv.Register(Method{Name: "term", Handler: func(ctx context.Context, _ []any) (any, error) {
		return RequestHeader(ctx, "X-Test-Term"), nil
	}})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	plain := NewClient(ts.URL, nil)
	for name, c := range map[string]*Client{"kolo": plain.WithHeader("X-Test-Term", "7"), "own": plain.OwnEncoder().WithHeader("X-Test-Term", "7")} {
		if got, err := c.Call(t.Context(), "term"); err != nil || got != "7" {
			t.Errorf("%s: got %#v, %v; want \"7\"", name, got, err)
		}
		got, err := c.Call(t.Context(), "system.multicall", []any{map[string]any{"methodName": "term", "params": []any{}}})
		if err != nil || len(got.([]any)) != 1 || got.([]any)[0].([]any)[0] != "7" {
			t.Errorf("%s multicall: got %#v, %v; want [[\"7\"]]", name, got, err)
		}
	}
	if got, err := plain.Call(t.Context(), "term"); err != nil || got != "" {
		t.Errorf("without the header: got %#v, %v; want \"\"", got, err)
	}
	if RequestHeader(t.Context(), "X-Test-Term") != "" {
		t.Error("a context without a request has a header")
	}
}
