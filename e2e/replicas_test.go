package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twopc/twopc/api"
	"github.com/twopc/twopc/ops/launch"
)

// lose kills participant name and deletes its database: lost for good.
func lose(t *testing.T, cl *launch.Cluster, name string) {
	t.Helper()
	kill(t, cl, name)
	if err := cl.Wipe(context.Background(), name); err != nil {
		t.Fatal(err)
	}
}

// participantState is name's state in the coordinator's status.
func participantState(cl *launch.Cluster, name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := api.NewClient(cl.CoordinatorURL(), nil).Status(ctx)
	if err != nil {
		return "", err
	}
	for _, p := range st.Participants {
		if p.Name == name {
			return p.State, nil
		}
	}
	return "", fmt.Errorf("status has no %s", name)
}

// waitState waits until participant name is in state want.
func waitState(t *testing.T, cl *launch.Cluster, name, want string) {
	t.Helper()
	eventually(t, time.Minute, name+" "+want, func() error {
		if s, err := participantState(cl, name); err != nil || s != want {
			return fmt.Errorf("%s is %q (%v)", name, s, err)
		}
		return nil
	})
}

// sameReplicas waits until the coordinator has nothing in doubt, then
// checks that the participants at urls are identical, hold nothing
// prepared, and have every acknowledged put.
func sameReplicas(t *testing.T, cl *launch.Cluster, urls []string, acked map[string]string) {
	t.Helper()
	client := api.NewClient(cl.CoordinatorURL(), nil)
	eventually(t, time.Minute, "nothing in doubt", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := client.Status(ctx)
		if err == nil && (st.InDoubt != 0 || st.Active != 0) {
			err = fmt.Errorf("in doubt %d, active %d", st.InDoubt, st.Active)
		}
		return err
	})
	var first map[string]any
	for _, u := range urls {
		res, err := call(u, cl.PeerHTTP(), "digest")
		if err != nil {
			t.Fatal(err)
		}
		d := res.(map[string]any)
		if first == nil {
			first = d
		}
		if d["hash"] != first["hash"] || d["prepared"] != int64(0) {
			t.Fatalf("replicas diverge or hold prepared transactions: %s %v, %s %v", urls[0], first, u, d)
		}
	}
	for key, want := range acked {
		for _, u := range urls {
			res, err := call(u, cl.PeerHTTP(), "read", key)
			if err != nil {
				t.Fatal(err)
			}
			if m := res.(map[string]any); m["found"] != true || m["value"] != want {
				t.Fatalf("acknowledged put %s=%s missing at %s: %v", key, want, u, m)
			}
		}
	}
}
