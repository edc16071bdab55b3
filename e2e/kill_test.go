package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/twopc/twopc/ops/drill"
)

// Clients write while the coordinator is killed with SIGKILL three times
// and a participant once. Afterwards every acknowledged put must be
// present on every replica, the replicas identical, nothing prepared and
// nothing in doubt.
func TestKillNineUnderLoad(t *testing.T) {
	cl := newCluster(t)
	load := startPutLoad(t, cl.CoordinatorURL(), 8)
	for range 3 {
		load.WaitAcks(100)
		// Logged, not asserted: how long from the kill and restart until
		// a put is acknowledged again (recovery included).
		t0 := time.Now()
		restart(t, cl, "coordinator")
		load.WaitAcks(1)
		t.Logf("coordinator killed and restarted: serving again after %v", time.Since(t0).Round(time.Millisecond))
	}
	load.WaitAcks(100)
	restart(t, cl, "p2")
	load.WaitAcks(100)
	acked := load.End()
	t.Logf("%d puts acknowledged across 3 coordinator kills and 1 participant kill", len(acked))

	probe := drill.Probe{Cluster: cl, ParticipantHTTP: cl.PeerHTTP()}
	if err := probe.Settle(context.Background(), time.Minute); err != nil {
		t.Fatal(err)
	}
	var digests []map[string]any
	for _, u := range cl.ParticipantURLs() {
		res, err := call(u, cl.PeerHTTP(), "digest")
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, res.(map[string]any))
	}
	for i, d := range digests {
		if d["hash"] != digests[0]["hash"] || d["keys"] != digests[0]["keys"] {
			t.Fatalf("replicas diverge: p1 %v, p%d %v", digests[0], i+1, d)
		}
	}
	for key, want := range acked {
		for i, u := range cl.ParticipantURLs() {
			res, err := call(u, cl.PeerHTTP(), "read", key)
			if err != nil {
				t.Fatal(err)
			}
			m := res.(map[string]any)
			if m["found"] != true || m["value"] != want {
				t.Fatalf("acknowledged put %s=%s missing on p%d: %v", key, want, i+1, m)
			}
		}
	}
	if got := digests[0]["keys"].(int64); got < int64(len(acked)) {
		t.Fatalf("replicas hold %d keys, fewer than the %d acknowledged", got, len(acked))
	}
}
