package coordinator

import (
	"context"
	"testing"
	"time"
)

// Transactions that share a key take turns; one that gives up holds
// nothing; and the table forgets a key once nobody holds or waits for it
// (its entry serving another key then).
func TestKeyLocks(t *testing.T) {
	l := newKeyLocks()
	ctx := context.Background()
	first, ok := l.lockAll(ctx, []string{"a", "b"}, time.Hour, nil)
	if !ok {
		t.Fatal("free keys not taken")
	}
	if _, ok := l.lockAll(ctx, []string{"ab", "b"}, 0, nil); ok {
		t.Fatal("b taken twice")
	}
	// ab was taken, then given back when b was not to be had.
	third, ok := l.lockAll(ctx, []string{"ab"}, 0, nil)
	if !ok {
		t.Fatal("ab still held by a transaction that gave up")
	}
	third()

	waiting := make(chan struct{})
	got := make(chan func())
	go func() {
		u, ok := l.lockAll(ctx, []string{"a"}, time.Hour, func() { close(waiting) })
		if !ok {
			u = nil
		}
		got <- u
	}()
	<-waiting // it found a held, and waits
	first()
	first() // a second call releases nothing more
	second := <-got
	if second == nil {
		t.Fatal("a not taken once released")
	}
	if _, ok := l.lockAll(ctx, []string{"b"}, 0, nil); !ok {
		t.Fatal("b held after its holder released it")
	} // (and not released here: b stays held)
	second()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok := l.lockAll(cancelled, []string{"b"}, time.Hour, nil); ok {
		t.Fatal("b taken twice")
	}
	entries := 0
	for i := range l.shards {
		entries += len(l.shards[i].m)
	}
	if entries != 1 {
		t.Fatalf("%d keys in the table, want b's alone", entries)
	}
}
