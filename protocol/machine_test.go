package protocol

import "testing"

// A step must not copy its event to the heap: a put steps its machine
// about ten times (STAGED, COMMIT and END durable, a vote and an ack
// from each participant), and the coordinator did one allocation of a
// whole Event for each, because a vote's address escaped into the
// machine.
func TestStepKeepsItsEventOnTheStack(t *testing.T) {
	m, _ := Start("1.1", []string{"p1", "p2", "p3"}, []string{"k"})
	m.Step(Event{Kind: EvVote, From: "p1", Vote: Vote{Kind: VoteYes}})
	durable := Event{Kind: EvDurable, Record: KindStaged}               // p2 and p3 have not voted: nothing to do
	again := Event{Kind: EvVote, From: "p1", Vote: Vote{Kind: VoteYes}} // p1 voted: ignored
	if n := testing.AllocsPerRun(100, func() { m.Step(durable); m.Step(again) }); n != 0 {
		t.Fatalf("two steps that change nothing allocated %v times, want 0", n)
	}
	if m.State() != Preparing {
		t.Fatalf("state %v, want Preparing", m.State())
	}
}
