package api

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"testing"

	"github.com/twopc/twopc/coordinator"
)

// statusSeq answers status with p4 in each of states in turn, then the
// last one for ever; "?" is a failed call, "" leaves p4 out.
func statusSeq(states ...string) func(context.Context) (coordinator.Status, error) {
	i := 0
	return func(context.Context) (coordinator.Status, error) {
		s := states[min(i, len(states)-1)]
		i++
		st := coordinator.Status{Participants: []coordinator.ParticipantStatus{{Name: "p1", State: "active"}}}
		switch s {
		case "?":
			return st, errors.New("connection refused")
		case "":
		default:
			st.Participants = append(st.Participants, coordinator.ParticipantStatus{Name: "p4", State: s})
		}
		return st, nil
	}
}

func TestWaitActiveSaysEachState(t *testing.T) {
	var out bytes.Buffer
	err := WaitActive(context.Background(), statusSeq("excluded", "excluded", "?", "catching-up", "active"), "p4", &out)
	if err != nil {
		t.Fatal(err)
	}
	want := `^\S+  p4 is excluded\n\S+  p4 is \?\n\S+  p4 is catching-up\n\S+  p4 is active, after \S+\n$`
	if !regexp.MustCompile(want).MatchString(out.String()) {
		t.Errorf("output:\n%s\nwant it to match %s", out.String(), want)
	}
}

func TestWaitActiveGivesUp(t *testing.T) {
	var out bytes.Buffer
	if err := WaitActive(context.Background(), statusSeq("excluded", ""), "p4", &out); !errors.Is(err, ErrNotParticipant) {
		t.Errorf("p4 gone from status: %v, want ErrNotParticipant", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the bound has passed: one look, then the last state
	err := WaitActive(ctx, statusSeq("catching-up"), "p4", &out)
	if err == nil || !regexp.MustCompile(`^p4 is still catching-up after`).MatchString(err.Error()) {
		t.Errorf("bound passed: %v", err)
	}
}
