package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twopc/twopc/api"
	"github.com/twopc/twopc/ops/launch"
	"github.com/twopc/twopc/peer"
	"github.com/twopc/twopc/protocol"
)

// A coordinator restarted (with SIGKILL) logs a higher epoch, its term.
// Once it has written through every participant, a client of the earlier
// term is refused by each of them, its prepare included, and still after
// a participant is killed with SIGKILL and restarted: the term seen is
// durable.
func TestRestartedCoordinatorFencesTheOld(t *testing.T) {
	cl := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	old := epoch(t, cl)
	if _, err := call(cl.CoordinatorURL(), cl.ClientHTTP(), "put", "k", "old"); err != nil {
		t.Fatal(err)
	}
	restart(t, cl, cl.Coordinator())
	newer := epoch(t, cl)
	if newer <= old {
		t.Fatalf("epoch %d after a restart, was %d", newer, old)
	}
	// Every write goes to every participant: this one raises their term.
	if _, err := call(cl.CoordinatorURL(), cl.ClientHTTP(), "put", "k2", "new"); err != nil {
		t.Fatal(err)
	}
	for _, name := range cl.Participants() {
		_, err := peer.NewClient(cl.URL(name), cl.PeerHTTP(), old).Prepare(ctx, fmt.Sprintf("%d.999", old), &protocol.Txn{
			Success: []protocol.Op{{Kind: protocol.OpPut, Key: "k", Value: protocol.Value{Data: []byte("stale")}}}})
		wantRefused(t, name+": prepare of the old term", err, newer, old)
	}
	restart(t, cl, "p1")
	_, err := peer.NewClient(cl.URL("p1"), cl.PeerHTTP(), old).Read(ctx, "k")
	wantRefused(t, "p1, restarted after SIGKILL: read of the old term", err, newer, old)
	st, err := peer.NewClient(cl.URL("p1"), cl.PeerHTTP(), 0).Stats(ctx)
	if err != nil || st["term"] != int64(newer) || st["stale_term_refusals"] != 1 {
		t.Fatalf("p1 stats %v, %v: want term %d, 1 refusal since its restart", st, err, newer)
	}
	if v, err := call(cl.CoordinatorURL(), cl.ClientHTTP(), "get", "k"); err != nil || v != "old" {
		t.Fatalf("get k: %v, %v; want the value the old coordinator committed, untouched", v, err)
	}
}

func epoch(t *testing.T, cl *launch.Cluster) uint64 {
	t.Helper()
	st, err := api.NewClient(cl.CoordinatorURL(), cl.ClientHTTP()).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Epoch
}

func wantRefused(t *testing.T, what string, err error, seen, sent uint64) {
	t.Helper()
	var stale *protocol.StaleTermError
	if !errors.As(err, &stale) || stale.Seen != seen || stale.Sent != sent {
		t.Fatalf("%s: %v, want a stale term refusal (seen %d, sent %d)", what, err, seen, sent)
	}
}
