package faultproxy

import (
	"testing"
	"time"
)

// A link's direction is the direction between the two processes, on
// the connections either side opens: dropping Up (A to B) drops A's
// requests on A's connections and A's replies on B's, and nothing that
// B sends. A cut of Down cuts only the connections B opens.
func TestLinkDirectionsSpanBothProxies(t *testing.T) {
	fwd, bwd := newRig(t, realClock{}), newRig(t, realClock{})
	l := &Link{Forward: fwd.p, Backward: bwd.p}
	aCalls, bServes := fwd.connect() // A opened it, to B
	bCalls, aServes := bwd.connect() // B opened it, to A

	end := l.Drop(Up)
	send(t, aCalls, "request")
	send(t, aServes, "reply")
	until(t, "A's request and A's reply dropped", func() bool {
		return fwd.p.Stats().Dropped[Up] == 7 && bwd.p.Stats().Dropped[Down] == 5
	})
	expectNothing(t, bServes)
	expectNothing(t, bCalls)
	send(t, bServes, "b-reply")
	expect(t, aCalls, "b-reply")
	send(t, bCalls, "b-request")
	expect(t, aServes, "b-request")
	end()

	endCut := l.Cut(Down)
	expectBroken(t, bCalls)
	expectBroken(t, aServes)
	send(t, aCalls, "still")
	expect(t, bServes, "still")
	endCut()
}

func TestLinkApply(t *testing.T) {
	fwd, bwd := newRig(t, realClock{}), newRig(t, realClock{})
	l := &Link{Forward: fwd.p, Backward: bwd.p}
	for _, f := range []string{FaultDelay, FaultDrop, FaultCut} {
		end, err := l.Apply(f, "both", time.Millisecond)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		end()
	}
	if v := fwd.p.f.view(Up); v.drop || v.delay != 0 || fwd.p.isCut() || bwd.p.isCut() {
		t.Fatalf("faults left after their ends: %+v", v)
	}
	if _, err := l.Apply("flood", "up", 0); err == nil {
		t.Fatal("an unknown fault was applied")
	}
	if _, err := l.Apply(FaultDrop, "left", 0); err == nil {
		t.Fatal("an unknown direction was applied")
	}
	// B never calls A: a cut of Down has nothing to cut.
	one := &Link{Forward: fwd.p}
	one.Cut(Down)()
	one.Drop(Down)()
}
