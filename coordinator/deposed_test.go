package coordinator

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/participant"
	"github.com/twopc/twopc/peer"
	"github.com/twopc/twopc/protocol"
	"github.com/twopc/twopc/txlog"
)

// servedStores starts n participants behind real XML-RPC servers and
// returns their URLs.
func servedStores(t *testing.T, n int) []string {
	t.Helper()
	urls := make([]string, n)
	for i := range urls {
		st, err := participant.Open(filepath.Join(t.TempDir(), "p.db"), participant.Options{})
		if err != nil {
			t.Fatal(err)
		}
		srv := rpc.NewServer(rpc.DefaultLimits(), nil)
		peer.Register(srv, st)
		hs := httptest.NewServer(srv)
		t.Cleanup(func() { hs.Close(); st.Close() })
		urls[i] = hs.URL + "/RPC2"
	}
	return urls
}

// deposedCalls records Config.Deposed's calls.
type deposedCalls struct {
	mu   sync.Mutex
	seen []uint64
}

func (d *deposedCalls) deposed(seen uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen = append(d.seen, seen)
}

func (d *deposedCalls) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return fmt.Sprint(d.seen)
}

// startAt starts a coordinator of epoch (its term) with a log of its
// own, over peer clients of that term.
func startAt(t *testing.T, epoch uint64, urls []string, d *deposedCalls) *Coordinator {
	t.Helper()
	tl, _, err := txlog.Open(filepath.Join(t.TempDir(), "c.txlog"), txlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	members := make([]Member, len(urls))
	for i, u := range urls {
		members[i] = Member{Name: fmt.Sprint("p", i+1), URL: u, Participant: peer.NewClient(u, nil, epoch)}
	}
	c, err := New(Config{Members: members, Log: tl, Epoch: epoch, Deposed: d.deposed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); tl.Close() })
	return c
}

// A coordinator of a later epoch fences the earlier one: once the new one
// has called the participants, the old one's writes fail (a refusal is
// a failed call, never a vote), nothing of them is left at the
// participants, and the old one hears it was deposed, once.
func TestNewerCoordinatorFencesTheOlder(t *testing.T) {
	urls := servedStores(t, 2)
	var oldHook, newHook deposedCalls
	old := startAt(t, 1, urls, &oldHook)
	if err := old.Put(bg, "k", protocol.Value{Data: []byte("old")}); err != nil {
		t.Fatalf("put before any newer coordinator: %v", err)
	}
	// The newer one starts with a log of its own: it must not find the
	// old one's commit still on its way (a real successor has the old
	// log, and finishes that commit itself).
	waitIdle(t, old)
	newer := startAt(t, 2, urls, &newHook)
	if err := newer.Put(bg, "k", protocol.Value{Data: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := old.Put(bg, "k", protocol.Value{Data: []byte("stale")}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("put through the deposed coordinator: %v, want %v", err, ErrUnavailable)
		}
	}
	if got := oldHook.String(); got != "[2]" {
		t.Fatalf("Deposed called with %s, want once, with 2", got)
	}
	// The newer one's commit goes to the participants after its put
	// returned (it may linger for a later call to ride on).
	waitIdle(t, newer)
	for i, u := range urls {
		pc := peer.NewClient(u, nil, 0)
		ks, err := pc.Read(bg, "k")
		if err != nil || string(ks[0].Entry.Value.Data) != "new" || ks[0].Pending != "" {
			t.Fatalf("p%d holds %+v, %v; want new, nothing pending", i+1, ks, err)
		}
		var stale *protocol.StaleTermError
		if _, err := peer.NewClient(u, nil, 1).Read(bg, "k"); !errors.As(err, &stale) || stale.Seen != 2 {
			t.Fatalf("p%d: a read of term 1: %v, want a stale term refusal", i+1, err)
		}
	}
	if got := newHook.String(); got != "[]" {
		t.Fatalf("the newer coordinator was told it was deposed: %s", got)
	}
}

// A coordinator does not presume abort for a transaction of a later term:
// it was started by another coordinator, which may have committed it.
// A participant asking it gets an error and asks another coordinator.
func TestOutcomeOfALaterTermIsNotPresumed(t *testing.T) {
	urls := servedStores(t, 1)
	var hook deposedCalls
	old := startAt(t, 1, urls, &hook)
	if commit, err := old.Outcome(bg, "2.1"); err == nil {
		t.Fatalf("outcome of 2.1 from the coordinator of term 1: commit=%v, want an error", commit)
	}
	if commit, err := old.Outcome(bg, "1.99"); err != nil || commit {
		t.Fatalf("outcome of its own unknown 1.99: commit=%v %v, want abort (presumed)", commit, err)
	}
}

// waitIdle waits until c has nothing in flight or in doubt.
func waitIdle(t *testing.T, c *Coordinator) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a bound on a hang, not a timing assertion
	for st := c.Status(bg); st.InDoubt != 0 || st.Active != 0; st = c.Status(bg) {
		if time.Now().After(deadline) {
			t.Fatalf("coordinator never settled: %+v", st)
		}
		time.Sleep(time.Millisecond) // polling a condition, bounded above
	}
}
