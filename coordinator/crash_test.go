package coordinator

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twopc/twopc/protocol"
)

// The coordinator is killed after every step it takes while writing,
// then restarted from its log: crashing after step k for every k, until a
// run finishes before k. Whatever the step, the replicas end identical
// with nothing prepared, and the write happened everywhere exactly when
// it was committed: if the client heard success it is there, if it heard
// an abort it is not, and if its answer was lost with the coordinator
// either may be true, but everywhere the same.
func TestCrashAfterEveryStep(t *testing.T) {
	for _, tc := range []struct {
		name string
		txn  *protocol.Txn
		want func(committed bool) map[string]string
	}{
		{"put", putTxn("k", "new"), func(c bool) map[string]string {
			return map[string]string{"k": pick(c, "new", "old"), "j": "old"}
		}},
		{"transfer", &protocol.Txn{
			Compares: []protocol.Compare{{Key: "k", Target: protocol.TargetValue, Op: protocol.Equal, Value: protocol.Value{Data: []byte("old")}}},
			Success: []protocol.Op{{Kind: protocol.OpPut, Key: "k", Value: protocol.Value{Data: []byte("new")}},
				{Kind: protocol.OpDelete, Key: "j"}},
		}, func(c bool) map[string]string {
			return map[string]string{"k": pick(c, "new", "old"), "j": pick(c, "", "old")}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k := 0; ; k++ {
				cl := newCluster(t)
				cl.mustPut("k", "old")
				cl.mustPut("j", "old")
				cl.settle()
				cl.stop()
				cl.start(k)
				_, err := cl.c.Txn(bg, tc.txn)
				crashed := cl.env.isCrashed()
				cl.restart()
				cl.settle()
				// What the client heard decides what must be there; a
				// lost answer leaves it to the replicas, which must agree.
				committed := err == nil
				if !crashed && err != nil {
					t.Fatalf("step %d: no crash, yet %v", k, err)
				}
				if crashed && err != nil && !errors.Is(err, ErrOutcomeUnknown) && !errors.Is(err, ErrUnavailable) {
					t.Fatalf("step %d: %v", k, err)
				}
				if errors.Is(err, ErrOutcomeUnknown) {
					ks, _ := cl.parts[0].Read(bg, "k")
					committed = string(ks[0].Entry.Value.Data) == "new"
				}
				cl.check(tc.want(committed))
				// Nothing stays locked.
				cl.mustPut("k", "after")
				cl.settle()
				cl.check(map[string]string{"k": "after"})
				cl.stop()
				if !crashed {
					t.Logf("crashed after each of %d steps", k)
					return
				}
			}
		})
	}
}

func pick(c bool, yes, no string) string {
	if c {
		return yes
	}
	return no
}

// A participant killed after voting YES keeps its promise: once restarted
// it holds the prepared write, and the commit the coordinator keeps
// re-sending applies it. Meanwhile reads are served by the others.
func TestParticipantKilledAfterVote(t *testing.T) {
	cl := newCluster(t)
	p2 := cl.parts[1]
	var once sync.Once
	p2.afterPrepare = func() { once.Do(p2.kill) }
	cl.mustPut("k", "v") // the decision is durable: success
	if n := cl.c.counts.inDoubt.Load(); n != 1 {
		t.Fatalf("in doubt while p2 is down: %d, want 1", n)
	}
	if st := cl.c.Status(bg); st.Participants[1].State != StateOffline {
		t.Fatalf("status of p2: %+v", st.Participants[1])
	}
	for range 3 {
		v, err := cl.c.Get(bg, "k")
		if err != nil || string(v.Data) != "v" {
			t.Fatalf("get while p2 is down: %q %v", v.Data, err)
		}
	}
	p2.restart(t)
	cl.settle()
	cl.check(map[string]string{"k": "v"})
}

// A participant killed after applying a commit but before acknowledging
// it gets the commit again, which is a no-op.
func TestParticipantKilledAfterCommit(t *testing.T) {
	cl := newCluster(t)
	p2 := cl.parts[1]
	var once bool
	p2.afterCommit = func() error {
		if once {
			return nil
		}
		once = true
		p2.restart(t)
		return errors.New("connection reset")
	}
	cl.mustPut("k", "v")
	cl.settle()
	cl.check(map[string]string{"k": "v"})
	if !once {
		t.Fatal("the kill never happened")
	}
}

// A participant that is down during prepare makes the write fail with
// "unavailable" and leaves nothing behind anywhere.
func TestParticipantDownDuringPrepare(t *testing.T) {
	cl := newCluster(t)
	cl.mustPut("k", "old")
	cl.parts[2].kill()
	err := cl.put("k", "new")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("put with p3 down: %v, want ErrUnavailable", err)
	}
	cl.parts[2].restart(t)
	cl.settle()
	cl.check(map[string]string{"k": "old"})
}

// A participant asking about a transaction that is still being prepared
// gets abort, and the transaction does not commit afterwards.
func TestOutcomeQueryAbortsUndecided(t *testing.T) {
	cl := newCluster(t)
	var once sync.Once
	answered := make(chan error, 1)
	cl.parts[2].beforePrepare = func(id string) {
		once.Do(func() {
			commit, err := cl.c.Outcome(bg, id)
			if err == nil && commit {
				err = errors.New("answered commit")
			}
			answered <- err
		})
	}
	err := cl.put("k", "v")
	if aerr := <-answered; aerr != nil {
		t.Fatalf("outcome of a preparing transaction: %v, want abort", aerr)
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("put after its transaction was aborted by a query: %v", err)
	}
	cl.settle()
	cl.check(map[string]string{"k": ""})
}

// Recovery holds the keys of unfinished records of an earlier life that
// overlap (a COMMIT whose END was lost, and the STAGED of a later
// transaction sharing a key with it) under one hold, finishes both, and
// New does not wait for the keys while the first is still being delivered.
func TestRecoverOverlappingRecords(t *testing.T) {
	cl := newCluster(t)
	cl.mustPut("k", "a")
	cl.settle()
	epoch := cl.c.cfg.Epoch // the life whose records these are
	cl.stop()

	first, second := protocol.NewTxID(epoch, 100), protocol.NewTxID(epoch, 101)
	cl.appendRecords(
		protocol.Record{Kind: protocol.KindCommit, TxID: first, Participants: allParts, Keys: []string{"j", "k"}}, // applied everywhere, END lost
		protocol.Record{Kind: protocol.KindStaged, TxID: second, Participants: allParts, Keys: []string{"k", "m"}},
	)
	cl.prepareAt(cl.parts, second, "k", "b") // every participant voted YES for the second

	// p3 is slow to acknowledge the re-sent commit of the first, so the
	// first holds the keys for as long as the test wants.
	release := make(chan struct{})
	var once sync.Once
	cl.parts[2].afterCommit = func() error {
		once.Do(func() { <-release })
		return nil
	}
	cl.lockTimeout = time.Hour
	started := make(chan struct{})
	go func() { cl.start(-1); close(started) }()
	<-started
	close(release)
	cl.settle()
	cl.check(map[string]string{"k": "b"})
}

// A STAGED transaction that one participant never prepared is aborted by
// recovery even while another participant is down: one "not held" is
// proof enough, and the key must not stay in doubt until p1 is back.
func TestResolveAbortsWithAParticipantDown(t *testing.T) {
	cl := newCluster(t)
	cl.mustPut("k", "old")
	cl.settle()
	tx := protocol.NewTxID(cl.c.cfg.Epoch, 100)
	cl.stop()
	cl.appendRecords(protocol.Record{Kind: protocol.KindStaged, TxID: tx, Participants: allParts, Keys: []string{"k"}})
	cl.prepareAt(cl.parts[:2], tx, "k", "new") // p3 never got the prepare

	cl.parts[0].kill() // it cannot answer
	cl.start(-1)
	ctx, cancel := context.WithTimeout(bg, 10*time.Second) // a bound on a hang, not a timing assertion
	defer cancel()
	if commit, err := cl.c.Outcome(ctx, tx); err != nil || commit {
		t.Fatalf("outcome with p1 down: commit=%v, %v; want abort", commit, err)
	}
	cl.parts[0].restart(t)
	cl.settle()
	cl.check(map[string]string{"k": "old"})
}

// A participant that missed the abort of a transaction of this epoch,
// and cannot ask (every coordinator it knows was replaced), is told by
// the coordinator's periodic sweep: the transaction is unknown to the
// coordinator, so it finished, and the keys are free again. Another
// participant being down (so that the first sweep, at the start, is
// still waiting for it) holds up nothing.
func TestSweepAbortsWhatAParticipantMissed(t *testing.T) {
	cl := newCluster(t)
	cl.mustPut("k", "old")
	cl.settle()
	cl.parts[0].kill()
	cl.sweepEvery = 10 * time.Millisecond
	cl.restart()
	tx := protocol.NewTxID(cl.c.cfg.Epoch, 1_000_000) // this epoch's, finished here
	cl.prepareAt(cl.parts[1:2], tx, "k", "new")

	cl.waitSweeps(2)
	if held := heldAt(t, cl.parts[1]); len(held) > 0 {
		t.Fatalf("p2 still holds %v prepared after two sweeps", held)
	}
	cl.parts[0].restart(t)
	cl.mustPut("k", "after")
	cl.settle()
	cl.check(map[string]string{"k": "after"})
}

// A client hears "committed" once STAGED is durable and every vote is
// in; COMMIT follows. If the log then fails it (a leader that lost its
// term while COMMIT was out), the transaction fails here, and the next
// incarnation commits it from STAGED and the participants' prepared
// rows. Until then, the sweep must leave those rows alone, and a
// participant asking gets no presumed abort: either would lose the
// acknowledged write. A review found both.
func TestSweepLeavesAFailedCommitAlone(t *testing.T) {
	cl := newCluster(t)
	cl.mustPut("k", "old")
	cl.settle()
	cl.sweepEvery = 10 * time.Millisecond
	cl.logWrap = func(e *env) DecisionLog { return commitFails{e} }
	cl.fatal = func(error) {} // as a follower's coordinator logs it and goes on until closed
	cl.restart()
	cl.mustPut("k", "new") // acknowledged on STAGED; COMMIT then fails
	cl.waitSweeps(2)
	var tx string
	for _, p := range cl.parts {
		held := heldAt(t, p)
		if len(held) != 1 {
			t.Fatalf("%s holds %v prepared after two sweeps, want the failed commit", p.name, held)
		}
		tx = held[0]
	}
	if commit, err := cl.c.Outcome(bg, tx); err == nil {
		t.Fatalf("outcome of %s: commit=%v, want an error (unknown here), never a presumed abort", tx, commit)
	}
	cl.logWrap, cl.fatal = nil, nil
	cl.restart()
	cl.settle()
	cl.check(map[string]string{"k": "new"}) // the acknowledged write
}

// commitFails is a decision log whose COMMIT records never become
// durable (consensus.ErrNotLeader), while participants stay reachable.
type commitFails struct{ *env }

var errLostTerm = errors.New("lost the term (test)")

func (l commitFails) Queue(rec protocol.Record) func() error {
	if rec.Kind == protocol.KindCommit {
		return func() error { return errLostTerm }
	}
	return l.env.Queue(rec)
}

func (l commitFails) QueueThen(rec protocol.Record, _ bool, then func(error)) {
	wait := l.Queue(rec)
	go func() { then(wait()) }()
}

func (l commitFails) QueueLazy(rec protocol.Record) func() error { return l.Queue(rec) }
func (l commitFails) Append(rec protocol.Record) error           { return l.Queue(rec)() }

// waitSweeps waits for n more rounds of the coordinator's periodic sweep.
func (cl *cluster) waitSweeps(n uint64) {
	cl.t.Helper()
	want := cl.c.sweeps.Load() + n
	deadline := time.Now().Add(30 * time.Second) // a bound on a hang, not a timing assertion
	for cl.c.sweeps.Load() < want {
		if time.Now().After(deadline) {
			cl.t.Fatalf("the sweep did %d rounds in 30 s, want %d", cl.c.sweeps.Load(), want)
		}
		time.Sleep(time.Millisecond) // polling a condition, bounded above
	}
}

// heldAt lists the transactions p holds prepared.
func heldAt(t *testing.T, p *swappable) []string {
	t.Helper()
	st, err := p.get()
	if err != nil {
		t.Fatal(err)
	}
	pts, err := st.PreparedTxs(bg)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, pt := range pts {
		ids = append(ids, pt.TxID)
	}
	return ids
}
