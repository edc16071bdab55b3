package protocol

import (
	"context"
	"testing"
)

func TestStaleTermMessageRoundTrip(t *testing.T) {
	e := &StaleTermError{Seen: 9, Sent: 1 << 40}
	got, ok := ParseStaleTerm(e.Error())
	if !ok || *got != *e {
		t.Fatalf("ParseStaleTerm(%q) = %+v, %v; want %+v", e.Error(), got, ok, e)
	}
	if _, ok := ParseStaleTerm("key k is locked"); ok {
		t.Error("another message parsed as a stale term")
	}
}

func TestTermOf(t *testing.T) {
	if TermOf(context.Background()) != 0 || TermOf(WithTerm(context.Background(), 5)) != 5 {
		t.Error("TermOf does not return what WithTerm put")
	}
}
