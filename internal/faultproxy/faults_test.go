package faultproxy

import (
	"testing"
	"time"
)

// Overlapping delays: the longest one held counts, whatever order they
// were set in or the map iterates in.
func TestLongestDelayCounts(t *testing.T) {
	f := newFaults()
	endShort, endLong, endMid := f.delay(Up, time.Minute), f.delay(Up, time.Hour), f.delay(Up, time.Second)
	for range 20 {
		if d := f.view(Up).delay; d != time.Hour {
			t.Fatalf("delay %v with 1m, 1h and 1s held: want 1h", d)
		}
	}
	if d := f.view(Down).delay; d != 0 {
		t.Fatalf("down delayed by %v", d)
	}
	endLong()
	endLong() // twice releases nothing more
	if d := f.view(Up).delay; d != time.Minute {
		t.Fatalf("delay %v after the hour ended, want 1m", d)
	}
	endShort()
	endMid()
	if v := f.view(Up); v.delay != 0 || v.drop {
		t.Fatalf("faults left after every end: %+v", v)
	}
}

func TestParseDirections(t *testing.T) {
	for in, want := range map[string]int{"up": 1, "down": 1, "both": 2} {
		if d, err := ParseDirections(in); err != nil || len(d) != want {
			t.Errorf("%q: %v, %v", in, d, err)
		}
	}
	if _, err := ParseDirections("sideways"); err == nil {
		t.Error("sideways parsed")
	}
}
