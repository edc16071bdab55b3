package consensus

import (
	"fmt"
	"testing"
)

// BenchmarkAppend is the latency of one record committed by a group of
// three on loopback: what raft adds to a decision's durability.
func BenchmarkAppend(b *testing.B) {
	g := newGroup(b, "c1", "c2", "c3")
	r := g.serving("")
	log := g.node(r.name).Log(r.Term)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := log.Append(staged(fmt.Sprintf("%d.%d", r.Term, i+1))); err != nil {
			r = g.serving("") // a leader changed at the start
			log = g.node(r.name).Log(r.Term)
		}
	}
}
