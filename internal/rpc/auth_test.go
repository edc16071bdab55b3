package rpc

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestSecret(t *testing.T) {
	s := NewSecret("s3cret")
	if !s.IsSet() || !s.Check("s3cret") || s.Check("s3cre") || s.Check("") || s.Check("s3cret ") {
		t.Fatal("Check accepts the wrong tokens or refuses the right one")
	}
	if !s.Matches(Present("s3cret")) || s.Matches(Present("")) || s.Matches(Presented{}) || s.Matches(Present("s3cre")) {
		t.Fatal("Matches accepts the wrong tokens or refuses the right one")
	}
	var unset Secret
	if unset.IsSet() || unset.Check("") || NewSecret("").IsSet() {
		t.Fatal("an unset secret must match nothing and report unset")
	}
}

// A server that requires a token refuses callers without it, with the
// wrong one, and inside multicall too, and never runs the handler for
// them; Bearer and Basic (Python's user:token@host URLs) both work.
func TestRequireToken(t *testing.T) {
	var ran atomic.Int64
	srv := NewServer(DefaultLimits(), nil)
	srv.Register(Method{Name: "touch", Handler: func(context.Context, []any) (any, error) {
		ran.Add(1)
		return true, nil
	}})
	srv.SetAuthorizer(RequireToken(NewSecret("tok")))
	hs := httptest.NewServer(srv)
	defer hs.Close()
	ctx := context.Background()

	refused := func(c *Client, method string, args ...any) {
		t.Helper()
		_, err := c.Call(ctx, method, args...)
		var f *Fault
		if !errors.As(err, &f) || f.Code != NotAuthorised {
			t.Fatalf("%s: %v, want fault %d", method, err, NotAuthorised)
		}
		if strings.Contains(f.Message, "tok") && !strings.Contains(f.Message, "token") {
			t.Fatalf("fault repeats the token: %q", f.Message)
		}
	}
	refused(NewClient(hs.URL, nil), "touch")
	refused(NewClient(hs.URL, WithToken(nil, "wrong")), "touch")
	refused(NewClient(hs.URL, nil), "system.multicall", []any{map[string]any{"methodName": "touch", "params": []any{}}})
	if n := ran.Load(); n != 0 {
		t.Fatalf("handler ran %d times for refused callers", n)
	}

	if _, err := NewClient(hs.URL, WithToken(nil, "tok")).Call(ctx, "touch"); err != nil {
		t.Fatalf("bearer token: %v", err)
	}
	basic := strings.Replace(hs.URL, "http://", "http://anyone:tok@", 1)
	if _, err := NewClient(basic, nil).Call(ctx, "touch"); err != nil {
		t.Fatalf("basic auth: %v", err)
	}
	if n := ran.Load(); n != 2 {
		t.Fatalf("handler ran %d times, want 2", n)
	}
}
