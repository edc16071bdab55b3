package rpc

import (
	"errors"
	"strings"
	"testing"
)

// Input of any length appears in faults and logs only as a short excerpt:
// every place that quotes a name, a number or an encoding/xml message.
func TestFaultsQuoteShortExcerpts(t *testing.T) {
	lim := DefaultLimits()
	ts, logs := newTestServer(t, lim)
	long := strings.Repeat("A", 1<<20)
	ts.Config.Handler.(*Server).SetAuthorizer(func(method string, _ Presented) error {
		if method == "secret."+long {
			return Faultf(NotAuthorised, "not authorised to call %s", method) // unclipped: the server must cut it
		}
		return RequireToken(NewSecret("t"))(method, Present("t"))
	})
	for _, tc := range []struct{ name, body string }{
		{"unknown method", encodeCall(t, long)},
		{"entity name", oneParam("&" + long + ";")},
		{"character reference", oneParam("&#" + strings.Repeat("1", 1<<20) + ";")},
		{"element name", oneParam("<" + long + "/>")},
		{"type name", oneParam("<" + long + ">x</" + long + ">")},
		{"root element", "<" + long + "/>"},
		{"element after the root", encodeCall(t, "echo") + "<" + long + "/>"},
		{"unclosed element", "<methodCall><" + long + ">"},
		{"handler's own message", encodeCall(t, "secret."+long)},
		{"multicall entry", encodeCall(t, "system.multicall", []any{map[string]any{"methodName": long, "params": []any{}}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := post(t, ts.URL, tc.body)
			var f *Fault
			if tc.name == "multicall entry" && err == nil {
				m := got.([]any)[0].(map[string]any)
				f = &Fault{Code: int(m["faultCode"].(int64)), Message: m["faultString"].(string)}
			} else if !errors.As(err, &f) {
				t.Fatalf("got %v, %v; want a fault", got, err)
			}
			// The places that quote input quote maxQuoted bytes; the
			// server cuts whatever a handler says to maxMessage.
			quoted := tc.name != "handler's own message" && strings.Contains(f.Message, strings.Repeat("A", 2*maxQuoted))
			if len(f.Message) > maxMessage+40 || quoted {
				t.Errorf("fault %d: %d-byte message %.120q...", f.Code, len(f.Message), f.Message)
			}
		})
	}
	if l := logs.String(); len(l) > 64<<10 {
		t.Errorf("the log holds %d bytes after %d short lines", len(l), 10)
	}
}

// The excerpt helpers cut on a rune boundary and say how much was cut.
func TestClip(t *testing.T) {
	s := strings.Repeat("é", 100) // 2 bytes each
	got := clip(s, 41)
	if !strings.HasPrefix(got, strings.Repeat("é", 20)+"...") || !strings.Contains(got, "(200 bytes)") {
		t.Errorf("clip = %q", got)
	}
	if clip("short", 41) != "short" {
		t.Errorf("a short string was changed")
	}
	if got := excerpt(s); got != `"`+strings.Repeat("é", 20)+`"...` {
		t.Errorf("excerpt = %q", got)
	}
}
