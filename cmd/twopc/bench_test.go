package main

import (
	"strings"
	"testing"
)

// The per-operation figures need two readings of the same counters; a
// reading that failed (no peer token) must give a hint, never a panic.
func TestPerOp(t *testing.T) {
	four := []fsyncCount{{"coordinator", 10, 1000}, {"p1", 20, 0}, {"p2", 30, 0}, {"p3", 40, 0}}
	later := []fsyncCount{{"coordinator", 20, 3000}, {"p1", 30, 0}, {"p2", 40, 0}, {"p3", 60, 0}}
	if got := perOp(four, later, 10); got != " coordinator<->participants=200 fsyncs/op: coordinator=1.00 p1=1.00 p2=1.00 p3=2.00" {
		t.Errorf("perOp = %q", got)
	}
	for _, tc := range []struct {
		name          string
		before, after []fsyncCount
	}{{"no readings", nil, nil}, {"first failed", nil, later}, {"second failed", four, nil}} {
		if got := perOp(tc.before, tc.after, 10); !strings.Contains(got, "peer token") {
			t.Errorf("%s: perOp = %q, want the hint", tc.name, got)
		}
	}
}

// A multicall's entries count one op each; an entry that failed counts
// as its fault instead.
func TestCountMulticall(t *testing.T) {
	errs := map[string]int{}
	reply := []any{[]any{true}, map[string]any{"faultCode": int64(2), "faultString": "conflict"}, []any{true}}
	if n := countMulticall(reply, errs); n != 2 || errs["fault 2"] != 1 || len(errs) != 1 {
		t.Errorf("countMulticall = %d, errors %v; want 2 and one fault 2", n, errs)
	}
}
