package coordinator

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twopc/twopc/peer"
	"github.com/twopc/twopc/protocol"
	"github.com/twopc/twopc/txlog"
)

// scripted is a participant whose reads return a script of snapshots.
type scripted struct {
	Participant
	reads  [][]protocol.KeyState
	onRead func() // if set, runs after the first read
}

func (s *scripted) Read(context.Context, ...string) ([]protocol.KeyState, error) {
	if s.onRead != nil {
		defer func() { s.onRead(); s.onRead = nil }()
	}
	r := s.reads[0]
	if len(s.reads) > 1 {
		s.reads = s.reads[1:]
	}
	return r, nil
}

// machineIn returns a machine for transaction 1.1 over participant p,
// driven into state s.
func machineIn(s protocol.State) *protocol.Machine {
	if s == protocol.Resolving {
		m, _ := protocol.Recover(protocol.Record{Kind: protocol.KindStaged, TxID: "1.1", Participants: []string{"p"}, Keys: []string{"k"}}, nil)
		return m
	}
	m, _ := protocol.Start("1.1", []string{"p"}, []string{"k"})
	step := func(ev protocol.Event) { m.Step(ev) }
	switch s {
	case protocol.Committing, protocol.Committed, protocol.Finished:
		step(protocol.Event{Kind: protocol.EvVote, From: "p", Vote: protocol.Vote{Kind: protocol.VoteYes}})
		step(protocol.Event{Kind: protocol.EvDurable, Record: protocol.KindStaged})
		if s != protocol.Committing {
			step(protocol.Event{Kind: protocol.EvDurable, Record: protocol.KindCommit})
		}
		if s == protocol.Finished {
			step(protocol.Event{Kind: protocol.EvAcked, From: "p", Msg: protocol.MsgCommit})
		}
	case protocol.Aborting, protocol.Aborted:
		step(protocol.Event{Kind: protocol.EvVote, From: "p", Vote: protocol.Vote{Kind: protocol.VoteNo}})
		if s == protocol.Aborted {
			step(protocol.Event{Kind: protocol.EvDurable, Record: protocol.KindAbort})
		}
	}
	if m.State() != s {
		panic("machineIn: got " + m.State().String())
	}
	return m
}

func readCoordinator(p Participant, timeout time.Duration) *Coordinator {
	c := &Coordinator{cfg: Config{CallTimeout: timeout}}
	c.ctx = context.Background()
	c.roster.Store((&roster{byName: map[string]*member{}}).with(&member{Member: Member{Name: "p", Participant: p}}))
	c.setWriteSet()
	return c
}

// The value a read returns depends on the state of the transaction that
// holds the key prepared, as the coordinator knows it.
func TestReadResolvesPendingWrites(t *testing.T) {
	entry := func(v string) protocol.Entry {
		return protocol.Entry{Found: true, Value: protocol.Value{Data: []byte(v)}, Version: 1}
	}
	old := []protocol.KeyState{{Key: "k", Entry: entry("old")}}
	pending := []protocol.KeyState{{Key: "k", Entry: entry("old"), Pending: "1.1", Next: entry("new")}}
	applied := []protocol.KeyState{{Key: "k", Entry: entry("new")}}
	for _, tc := range []struct {
		name  string
		state protocol.State // the pending transaction's; -1: unknown
		reads [][]protocol.KeyState
		want  string
	}{
		{"nothing pending", -1, [][]protocol.KeyState{old}, "old"},
		{"pending, being prepared", protocol.Preparing, [][]protocol.KeyState{pending}, "old"},
		// Every vote and STAGED durable: the client may have been told.
		{"pending, commit being logged", protocol.Committing, [][]protocol.KeyState{pending}, "new"},
		{"pending, committed", protocol.Committed, [][]protocol.KeyState{pending}, "new"},
		{"pending, aborting", protocol.Aborting, [][]protocol.KeyState{pending}, "old"},
		{"pending, aborted", protocol.Aborted, [][]protocol.KeyState{pending}, "old"},
		// Finished, not yet forgotten: the snapshot was taken before the
		// participant applied it, the lookup after every participant had.
		{"pending, finished since", protocol.Finished, [][]protocol.KeyState{pending, applied}, "new"},
		// Unknown then gone: it committed and was forgotten meanwhile.
		{"unknown, then applied", -1, [][]protocol.KeyState{pending, applied}, "new"},
		// Unknown twice: a committed one would be gone; it was aborted.
		{"unknown twice", -1, [][]protocol.KeyState{pending, pending}, "old"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := readCoordinator(&scripted{reads: tc.reads}, time.Second)
			if tc.state >= 0 {
				x := newTx(c, "1.1", nil, func() {})
				x.m = machineIn(tc.state)
				c.txs.Store("1.1", x)
			}
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
	entry := func(v string) protocol.Entry {
		return protocol.Entry{Found: true, Value: protocol.Value{Data: []byte(v)}}
	}
	pending := []protocol.KeyState{{Key: "k", Entry: entry("old"), Pending: "1.1", Next: entry("new")}}
	applied := []protocol.KeyState{{Key: "k", Entry: entry("new")}}

	s := &scripted{reads: [][]protocol.KeyState{pending, applied}}
	c := readCoordinator(s, time.Minute)
	x := newTx(c, "1.1", nil, func() {})
	x.m = machineIn(protocol.Resolving)
	c.txs.Store("1.1", x)
	s.onRead = func() { close(x.settled) } // recovery found every vote; the commit reached p
	if v, err := c.Get(bg, "k"); err != nil || string(v.Data) != "new" {
		t.Fatalf("read once resolved: %q %v, want new", v.Data, err)
	}

	c = readCoordinator(&scripted{reads: [][]protocol.KeyState{pending}}, time.Millisecond)
	x = newTx(c, "1.1", nil, func() {})
	x.m = machineIn(protocol.Resolving)
	c.txs.Store("1.1", x) // never resolved
	if _, err := c.Get(bg, "k"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("read of a key in doubt: %v, want ErrUnavailable", err)
	}
}

// A read-only transaction over several keys sees one instant: the keys
// are locked against writes while it reads them.
func TestReadOnlyTxnIsAtomic(t *testing.T) {
	cl := newCluster(t)
	cl.mustPut("a", "1")
	cl.mustPut("b", "1")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 2; i < 50; i++ {
			v := protocol.Value{Data: []byte{byte('0' + i%10)}}
			_, err := cl.c.Txn(bg, &protocol.Txn{Success: []protocol.Op{{Kind: protocol.OpPut, Key: "a", Value: v}, {Kind: protocol.OpPut, Key: "b", Value: v}}})
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	reads := 0
	for {
		select {
		case <-done:
			if reads == 0 {
				t.Fatal("no read ran during the writes")
			}
			return
		default:
		}
		r, err := cl.c.Txn(bg, &protocol.Txn{Success: []protocol.Op{{Kind: protocol.OpGet, Key: "a"}, {Kind: protocol.OpGet, Key: "b"}}})
		if err != nil {
			t.Fatal(err)
		}
		if a, b := r.Results[0], r.Results[1]; string(a.Value.Data) != string(b.Value.Data) || a.Version != b.Version {
			t.Fatalf("a read saw a half-applied write: a=%v b=%v", a, b)
		}
		reads++
	}
}

// A participant excluded while a read to it was out may answer with
// what it had before writes committed without it: its answer is not
// used, and the read goes to another participant of the write set.
func TestReadFromParticipantExcludedMeanwhile(t *testing.T) {
	entry := func(v string) []protocol.KeyState {
		return []protocol.KeyState{{Key: "k", Entry: protocol.Entry{Found: true, Value: protocol.Value{Data: []byte(v)}, Version: 1}}}
	}
	stale, fresh := &scripted{reads: [][]protocol.KeyState{entry("stale")}}, &scripted{reads: [][]protocol.KeyState{entry("fresh")}}
	c := &Coordinator{cfg: Config{CallTimeout: time.Second}}
	c.ctx = context.Background()
	r := &roster{byName: map[string]*member{}}
	r = r.with(&member{Member: Member{Name: "p", Participant: stale}})
	r = r.with(&member{Member: Member{Name: "q", Participant: fresh}})
	c.roster.Store(r)
	c.setWriteSet()
	stale.onRead = func() { r.byName["p"].excluded.Store(true) }
	c.rr.Store(uint64(len(r.members)) - 1) // the next read starts at p
	got, err := c.snapshot(context.Background(), []string{"k"})
	if err != nil || string(got["k"].Value.Data) != "fresh" {
		t.Fatalf("read = %q, %v; want fresh, from q", got["k"].Value.Data, err)
	}
}

// confirmingLog is a decision log shared by several coordinators, as far
// as reads are concerned: confirm says whether this one still leads.
type confirmingLog struct {
	DecisionLog
	mu      sync.Mutex
	confirm error
	calls   int
}

func (l *confirmingLog) ConfirmLeader(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	return l.confirm
}

func (l *confirmingLog) set(err error) (callsBefore int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.confirm = err
	return l.calls
}

// A coordinator whose log is shared answers no read, cached or not,
// read-only transaction or compare that fails, before the group
// confirms it still leads; writes need no such round (raft's commit of
// STAGED fences them).
func TestReadsWaitForTheGroupToConfirmTheLeader(t *testing.T) {
	urls := servedStores(t, 2)
	tl, _, err := txlog.Open(filepath.Join(t.TempDir(), "c.txlog"), txlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := &confirmingLog{DecisionLog: tl}
	members := make([]Member, len(urls))
	for i, u := range urls {
		members[i] = Member{Name: fmt.Sprint("p", i+1), URL: u, Participant: peer.NewClient(u, nil, 1)}
	}
	c, err := New(Config{Members: members, Log: log, Epoch: 1, ReadCacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); tl.Close() })

	if err := c.Put(bg, "k", protocol.Value{Data: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if n := log.set(errors.New("deposed")); n != 0 {
		t.Fatalf("a put asked the group %d times; writes need no confirmation", n)
	}
	if _, err := c.Get(bg, "k"); !errors.Is(err, ErrNotLeading) {
		t.Fatalf("get (its value is cached) without a confirmed leader: %v, want %v", err, ErrNotLeading)
	}
	readOnly := &protocol.Txn{Success: []protocol.Op{{Kind: protocol.OpGet, Key: "k"}}}
	if _, err := c.Txn(bg, readOnly); !errors.Is(err, ErrNotLeading) {
		t.Fatalf("read-only txn without a confirmed leader: %v, want %v", err, ErrNotLeading)
	}
	failedCompare := &protocol.Txn{
		Compares: []protocol.Compare{{Key: "k", Target: protocol.TargetValue, Op: protocol.Equal, Value: protocol.Value{Data: []byte("other")}}},
		Success:  []protocol.Op{{Kind: protocol.OpPut, Key: "k", Value: protocol.Value{Data: []byte("w")}}},
	}
	if _, err := c.Txn(bg, failedCompare); !errors.Is(err, ErrNotLeading) {
		t.Fatalf("a compare that fails, without a confirmed leader: %v, want %v", err, ErrNotLeading)
	}

	log.set(nil)
	if v, err := c.Get(bg, "k"); err != nil || string(v.Data) != "v" {
		t.Fatalf("get once confirmed: %q, %v", v.Data, err)
	}
	if r, err := c.Txn(bg, failedCompare); err != nil || r.Succeeded {
		t.Fatalf("a compare that fails, once confirmed: %+v, %v; want not succeeded", r, err)
	}
}
