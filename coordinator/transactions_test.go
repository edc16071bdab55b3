package coordinator

import (
	"slices"
	"testing"
	"time"

	"github.com/twopc/twopc/protocol"
)

// Transactions shows what an earlier life left undecided or unacknowledged
// while a participant is down, in id order, and nothing once it is back.
func TestTransactionsListsUnfinished(t *testing.T) {
	cl := newCluster(t)
	cl.stop()
	cl.parts[1].kill()
	cl.appendRecords(
		protocol.Record{Kind: protocol.KindCommit, TxID: "1.10", Participants: allParts, Keys: []string{"a"}},
		protocol.Record{Kind: protocol.KindCommit, TxID: "1.9", Participants: allParts, Keys: []string{"b"}},
	)
	before := time.Now()
	cl.start(-1)
	got := cl.c.Transactions()
	var ids, states []string
	for _, v := range got {
		ids, states = append(ids, v.ID), append(states, v.State)
		if v.Since.Before(before) || v.Since.After(time.Now()) {
			t.Errorf("%s: since %v, want the recovery's time", v.ID, v.Since)
		}
	}
	if !slices.Equal(ids, []string{"1.9", "1.10"}) || !slices.Equal(states, []string{"committed", "committed"}) {
		t.Fatalf("transactions %v in states %v, want 1.9 and 1.10 committed", ids, states)
	}
	if !slices.Equal(got[0].Keys, []string{"b"}) {
		t.Errorf("1.9's keys: %q", got[0].Keys)
	}
	cl.parts[1].restart(t)
	cl.settle()
	if got := cl.c.Transactions(); len(got) != 0 {
		t.Fatalf("after settling: %+v", got)
	}
}

func TestCompareTxIDs(t *testing.T) {
	ids := []string{"2.1", "1.10", "10.1", "1.9", "1.100"}
	slices.SortFunc(ids, protocol.CompareTxIDs)
	if want := []string{"1.9", "1.10", "1.100", "2.1", "10.1"}; !slices.Equal(ids, want) {
		t.Fatalf("%v, want %v", ids, want)
	}
}
