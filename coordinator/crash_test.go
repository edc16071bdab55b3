package coordinator

import (
	"context"
	"errors"
	"github.com/twopc/twopc/protocol"
	"sync"
	"testing"
	"time"
)

// The coordinator is killed at each point of the protocol while writing
// k=new over k=old, then restarted from its log. Whatever the point, the
// replicas must end identical with nothing prepared, and the write must
// have happened everywhere exactly when it was committed: every
// participant voted YES and the STAGED record was durable (parallel
// commits), whether or not the client heard of it.
func TestCoordinatorCrashPoints(t *testing.T) {
	for _, tc := range []struct {
		point     string
		acked     bool // the client heard success before the crash
		committed bool // the write survives recovery
	}{
		{"before-prepare", false, false},  // STAGED logged, nobody prepared
		{"send-prepare:p2", false, false}, // p2 never prepared
		{"after-votes", false, false},     // all voted YES, STAGED not known durable: lost in the crash
		{"before-decision", false, true},  // all voted YES and STAGED is durable: committed, unheard
		{"after-decision", true, true},    // acknowledged, no COMMIT record yet
		{"before-commit-record", true, true},
		{"after-commit-record", true, true}, // COMMIT durable, no commit sent
		{"commit:p2", true, true},           // some commits delivered
		{"before-end", true, true},          // all committed, END not logged
	} {
		t.Run(tc.point, func(t *testing.T) {
			cl := newCluster(t)
			cl.mustPut("k", "old")
			cl.mustPut("other", "x")
			cl.settle()

			fp, fired := trigger(tc.point, true, nil)
			cl.stop()
			cl.start(fp)
			err := cl.put("k", "new")
			waitFired(t, fired, tc.point)
			if acked := err == nil; acked != tc.acked {
				t.Fatalf("put returned %v, want acked=%v", err, tc.acked)
			}
			if err != nil && !errors.Is(err, errCrashed) {
				t.Fatalf("put: %v", err)
			}

			cl.restart()
			cl.settle()
			want := "old"
			if tc.committed {
				want = "new"
			}
			cl.check(map[string]string{"k": want, "other": "x"})

			// The key is usable again: nothing stays locked.
			cl.mustPut("k", "after")
			cl.settle()
			cl.check(map[string]string{"k": "after"})
		})
	}
}

// A participant killed after voting YES keeps its promise: once restarted
// it holds the prepared write, and the commit the coordinator keeps
// re-sending applies it.
func TestParticipantKilledAfterVote(t *testing.T) {
	cl := newCluster(t)
	p2 := cl.parts[1]
	fp, fired := trigger("prepared:p2", false, p2.kill)
	cl.stop()
	cl.start(fp)
	cl.mustPut("k", "v") // the decision is durable: success
	waitFired(t, fired, "prepared:p2")
	if n := cl.c.inDoubt.Load(); n != 1 {
		t.Fatalf("in doubt while p2 is down: %d, want 1", n)
	}
	if st := cl.c.Status(bg); st.Participants[1].State != StateOffline {
		t.Fatalf("status of p2: %+v", st.Participants[1])
	}
	// Reads are served by the others meanwhile, and see the write.
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

// An abort is logged before anyone hears of it. Here every participant
// voted YES and STAGED is durable, but a participant's question aborted
// the transaction first; the coordinator then dies before any abort is
// delivered. Recovery must keep it aborted: without the ABORT record it
// would find every vote and commit what a participant was told was
// aborted.
func TestAbortAnswerSurvivesCrash(t *testing.T) {
	cl := newCluster(t)
	cl.mustPut("k", "old")
	cl.settle()
	var answer error = errors.New("no transaction in flight")
	fp, fired := trigger("before-decision", true, func() {
		cl.c.txs.Range(func(k, _ any) bool {
			commit, err := cl.c.Outcome(bg, k.(string))
			if answer = err; err == nil && commit {
				answer = errors.New("outcome: commit")
			}
			return false
		})
	})
	cl.stop()
	cl.start(fp)
	if err := cl.put("k", "new"); !errors.Is(err, errCrashed) {
		t.Fatalf("put: %v, want the simulated crash", err)
	}
	waitFired(t, fired, "before-decision")
	if answer != nil {
		t.Fatalf("the question was not answered abort: %v", answer)
	}
	cl.restart()
	cl.settle()
	cl.check(map[string]string{"k": "old"})
}

// The coordinator dies after deciding abort (a participant was down) but
// before the ABORT record: the missing vote alone makes recovery abort.
func TestCrashBeforeAbortRecord(t *testing.T) {
	cl := newCluster(t)
	cl.mustPut("k", "old")
	cl.settle()
	fp, fired := trigger("before-abort-record", true, nil)
	cl.stop()
	cl.start(fp)
	cl.parts[2].kill()
	if err := cl.put("k", "new"); !errors.Is(err, errCrashed) {
		t.Fatalf("put: %v, want the simulated crash", err)
	}
	waitFired(t, fired, "before-abort-record")
	cl.parts[2].restart(t)
	cl.restart()
	cl.settle()
	cl.check(map[string]string{"k": "old"})
}

// A participant restarted while a transaction is being prepared asks for
// its outcome; the coordinator must answer abort and then not commit.
func TestOutcomeQueryAbortsUndecided(t *testing.T) {
	cl := newCluster(t)
	var asked bool
	fp, fired := trigger("after-votes", false, func() {
		cl.c.txs.Range(func(k, _ any) bool {
			commit, err := cl.c.Outcome(bg, k.(string))
			asked = err == nil && !commit
			return false
		})
	})
	cl.stop()
	cl.start(fp)
	err := cl.put("k", "v")
	waitFired(t, fired, "after-votes")
	if !asked {
		t.Fatal("outcome of a preparing transaction was not abort")
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("put after its transaction was aborted by a query: %v", err)
	}
	cl.settle()
	cl.check(map[string]string{"k": ""})
}

// A key can carry two unfinished records of an earlier life: a COMMIT
// whose END was lost, then the STAGED of the next write to that key.
// Recovery finishes them in log order under one hold of the key, and New
// does not wait for the key while the first is still being delivered
// (here it would wait out a lock timeout of an hour).
func TestRecoverTwoRecordsOfOneKey(t *testing.T) {
	cl := newCluster(t)
	cl.mustPut("k", "a")
	cl.settle()
	epoch := cl.c.cfg.Epoch // the life whose records these are
	cl.stop()

	first, second := txID(epoch, 100), txID(epoch, 101)
	cl.appendRecords(
		protocol.Record{Kind: protocol.KindCommit, TxID: first, Participants: allParts, Keys: []string{"k"}}, // applied everywhere, END lost
		protocol.Record{Kind: protocol.KindStaged, TxID: second, Participants: allParts, Keys: []string{"k"}},
	)
	cl.prepareAt(cl.parts, second, "k", "b") // every participant voted YES for the second

	// p3 is slow to acknowledge the re-sent commit of the first, so the
	// first holds the key for as long as the test wants.
	release := make(chan struct{})
	var once sync.Once
	cl.parts[2].afterCommit = func() error {
		once.Do(func() { <-release })
		return nil
	}
	cl.lockTimeout = time.Hour
	started := make(chan struct{})
	go func() { cl.start(nil); close(started) }()
	waitFired(t, started, "coordinator start")
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
	tx := txID(cl.c.cfg.Epoch, 100)
	cl.stop()
	cl.appendRecords(protocol.Record{Kind: protocol.KindStaged, TxID: tx, Participants: allParts, Keys: []string{"k"}})
	cl.prepareAt(cl.parts[:2], tx, "k", "new") // p3 never got the prepare

	cl.parts[0].kill() // asked first, and it cannot answer
	cl.start(nil)
	ctx, cancel := context.WithTimeout(bg, 10*time.Second) // a bound on a hang, not a timing assertion
	defer cancel()
	if commit, err := cl.c.Outcome(ctx, tx); err != nil || commit {
		t.Fatalf("outcome with p1 down: commit=%v, %v; want abort", commit, err)
	}
	cl.parts[0].restart(t)
	cl.settle()
	cl.check(map[string]string{"k": "old"})
}
