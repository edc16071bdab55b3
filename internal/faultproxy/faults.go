package faultproxy

import (
	"fmt"
	"sync"
	"time"
)

// Direction is which way bytes travel through a proxy or a link.
type Direction int

const (
	// Up is from the side that opens the connection to the target (on a
	// Link: from A to B).
	Up Direction = iota
	// Down is the way back.
	Down
)

func (d Direction) String() string {
	if d == Up {
		return "up"
	}
	return "down"
}

func (d Direction) reverse() Direction { return 1 - d }

// Clock tells the time for delays; tests inject one they move by hand.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// faults is what is done to each direction of a proxy now. A fault is a
// hold that its end releases, so that overlapping faults compose: a
// direction drops while any drop is held, and is delayed by the longest
// delay held. (Cuts are the Proxy's: they act on its connections.)
type faults struct {
	mu     sync.Mutex
	nextID int
	delays [2]map[int]time.Duration
	drops  [2]int
	// changed is closed and replaced at every change, to wake whoever
	// waits on the faults (a chunk held by a delay that just ended).
	changed chan struct{}
}

func newFaults() *faults {
	return &faults{delays: [2]map[int]time.Duration{{}, {}}, changed: make(chan struct{})}
}

// view is one direction's faults at one moment, and the channel that is
// closed when they next change.
type view struct {
	delay   time.Duration
	drop    bool
	changed <-chan struct{}
}

func (f *faults) view(dir Direction) view {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := view{drop: f.drops[dir] > 0, changed: f.changed}
	for _, d := range f.delays[dir] {
		v.delay = max(v.delay, d)
	}
	return v
}

// change applies fn under the lock and wakes every waiter.
func (f *faults) change(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *faults) delay(dir Direction, d time.Duration) (end func()) {
	var id int
	f.change(func() {
		f.nextID++
		id = f.nextID
		f.delays[dir][id] = d
	})
	return onlyOnce(func() { f.change(func() { delete(f.delays[dir], id) }) })
}

func (f *faults) drop(dir Direction) (end func()) {
	f.change(func() { f.drops[dir]++ })
	return onlyOnce(func() { f.change(func() { f.drops[dir]-- }) })
}

// onlyOnce makes an end function safe to call twice: the second call
// must not release someone else's hold.
func onlyOnce(fn func()) func() {
	var once sync.Once
	return func() { once.Do(fn) }
}

// all ends every fault of ends.
func all(ends []func()) func() {
	return onlyOnce(func() {
		for _, end := range ends {
			end()
		}
	})
}

// ParseDirections reads "up", "down" or "both".
func ParseDirections(s string) ([]Direction, error) {
	switch s {
	case "up":
		return []Direction{Up}, nil
	case "down":
		return []Direction{Down}, nil
	case "both":
		return []Direction{Up, Down}, nil
	}
	return nil, fmt.Errorf("faultproxy: direction %q: want up, down or both", s)
}
