package web

import (
	"strings"
	"testing"
	"time"
)

func TestRateMeter(t *testing.T) {
	m := &rateMeter{window: time.Minute}
	t0 := time.Unix(1000, 0)
	if r := m.add(t0, 100); r != nil {
		t.Errorf("first reading: %v, want no rate yet", r)
	}
	if r := m.add(t0.Add(10*time.Second), 150); len(r) != 1 || r[0] != 5 {
		t.Errorf("50 in 10s: %v, want 5/s", r)
	}
	// Readings older than the window stop counting, but one is kept so
	// that the rate spans the whole window.
	m.add(t0.Add(70*time.Second), 400)
	if r := m.add(t0.Add(80*time.Second), 450); len(r) != 1 || r[0] != 300.0/70 {
		t.Errorf("after the window moved: %v, want (450-150)/70s", r)
	}
	if r := m.add(t0.Add(90*time.Second), 3); r != nil {
		t.Errorf("a counter that went down (a restart): %v, want no rate", r)
	}
	if r := m.add(t0.Add(100*time.Second), 13); len(r) != 1 || r[0] != 1 {
		t.Errorf("after the reset: %v, want 1/s", r)
	}
}

func TestKeysText(t *testing.T) {
	for _, tc := range []struct {
		keys []string
		want string
	}{
		{[]string{"a"}, `"a"`},
		{[]string{"a", "b\x00"}, `"a", "b\x00"`},
		{[]string{"1", "2", "3", "4", "5", "6"}, `"1", "2", "3", "4" and 2 more`},
		{[]string{strings.Repeat("k", 50)}, `"` + strings.Repeat("k", 48) + `"…`},
	} {
		if got := keysText(tc.keys); got != tc.want {
			t.Errorf("keysText(%q) = %s, want %s", tc.keys, got, tc.want)
		}
	}
}
