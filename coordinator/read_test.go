package coordinator

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twopc/twopc/participant"
)

// scripted is a participant whose reads return a script of snapshots.
type scripted struct {
	unconfigured
	reads  []participant.ReadResult
	onRead func() // if set, runs after the first read
}

func (s *scripted) Read(context.Context, string) (participant.ReadResult, error) {
	if s.onRead != nil {
		defer func() { s.onRead(); s.onRead = nil }()
	}
	r := s.reads[0]
	if len(s.reads) > 1 {
		s.reads = s.reads[1:]
	}
	return r, nil
}

// The value a read returns depends on the state of the transaction that
// holds the key prepared, as the coordinator knows it.
func TestReadResolvesPendingWrites(t *testing.T) {
	old := participant.ReadResult{Found: true, Value: participant.Value{Data: []byte("old")}}
	pending := func(id string) participant.ReadResult {
		r := old
		r.Pending = id
		r.Write = participant.Write{Key: "k", Op: participant.OpPut, Value: participant.Value{Data: []byte("new")}}
		return r
	}
	for _, tc := range []struct {
		name  string
		state *txState // the pending transaction's state; nil = unknown
		reads []participant.ReadResult
		want  string
	}{
		{"nothing pending", nil, []participant.ReadResult{old}, "old"},
		{"pending, being prepared", ptr(statePreparing), []participant.ReadResult{pending("1.1")}, "old"},
		// Every vote and STAGED durable: the client may have been told.
		{"pending, commit being logged", ptr(stateCommitting), []participant.ReadResult{pending("1.1")}, "new"},
		{"pending, committed", ptr(stateCommitted), []participant.ReadResult{pending("1.1")}, "new"},
		{"pending, aborted", ptr(stateAborted), []participant.ReadResult{pending("1.1")}, "old"},
		// Unknown then gone: it committed and was forgotten meanwhile.
		{"unknown, then applied", nil, []participant.ReadResult{pending("1.1"), {Found: true, Value: participant.Value{Data: []byte("new")}}}, "new"},
		// Unknown twice: a committed one would be gone; it was aborted.
		{"unknown twice", nil, []participant.ReadResult{pending("1.1"), pending("1.1")}, "old"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Coordinator{cfg: Config{CallTimeout: 1e9}}
			c.ctx = context.Background()
			if tc.state != nil {
				tx := newTxn("1.1", participant.Write{Key: "k"})
				tx.state = *tc.state
				c.txs.Store("1.1", tx)
			}
			m := &member{Member: Member{Name: "p", Participant: &scripted{reads: tc.reads}}}
			c.members = []*member{m}
			v, err := c.Get(bg, "k")
			if err != nil || string(v.Data) != tc.want {
				t.Fatalf("got %q %v, want %q", v.Data, err, tc.want)
			}
		})
	}
}

// A transaction of an earlier life that recovery is still resolving may
// have been committed or not: a read waits for the answer, within bounds.
func TestReadWaitsForResolution(t *testing.T) {
	pending := participant.ReadResult{Found: true, Value: participant.Value{Data: []byte("old")}, Pending: "1.1",
		Write: participant.Write{Key: "k", Op: participant.OpPut, Value: participant.Value{Data: []byte("new")}}}
	setup := func(timeout time.Duration) (*Coordinator, *txn, *scripted) {
		c := &Coordinator{cfg: Config{CallTimeout: timeout}}
		c.ctx = context.Background()
		tx := newRecovered("1.1", "k", stateResolving)
		c.txs.Store("1.1", tx)
		s := &scripted{reads: []participant.ReadResult{pending}}
		c.members = []*member{{Member: Member{Name: "p", Participant: s}}}
		return c, tx, s
	}

	c, tx, s := setup(time.Minute)
	s.onRead = func() { // recovery finds every vote and commits
		tx.decide(stateCommitting)
		tx.decide(stateCommitted)
		tx.settle(nil)
	}
	if v, err := c.Get(bg, "k"); err != nil || string(v.Data) != "new" {
		t.Fatalf("read once resolved as committed: %q %v, want new", v.Data, err)
	}

	c, _, _ = setup(time.Millisecond) // never resolved
	if _, err := c.Get(bg, "k"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("read of a key in doubt: %v, want ErrUnavailable", err)
	}
}

func ptr[T any](v T) *T { return &v }

// The transitions of a transaction are exactly those written down.
func TestDecide(t *testing.T) {
	for from := statePreparing; from <= stateResolving; from++ {
		for to := statePreparing; to <= stateResolving; to++ {
			tx := newTxn("1.1", participant.Write{})
			tx.state = from
			legal := ((from == statePreparing || from == stateResolving) && (to == stateCommitting || to == stateAborted)) ||
				(from == stateCommitting && to == stateCommitted)
			if got := tx.decide(to); got != legal {
				t.Errorf("%v -> %v: decide=%v, want %v", from, to, got, legal)
			}
		}
	}
}
