package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/twopc/twopc/coordinator"
)

// waitPoll is how often WaitActive asks for status: a catch-up takes
// seconds to minutes, and a status call costs the coordinator little.
const waitPoll = 200 * time.Millisecond

// waitHeartbeat is how often WaitActive says it is still waiting, so
// that a long catch-up does not look like a hang.
const waitHeartbeat = 30 * time.Second

// ErrNotParticipant is what WaitActive returns when the participant it
// waits for is not (or no longer) in status.
var ErrNotParticipant = errors.New("not a participant")

// WaitActive asks status until the participant name is active, and
// writes each state it passes through to out as it changes
// ("15:04:05.000  p4 is catching-up"), then "active, after 1.2s". It
// gives up when ctx is done, saying the last state, or at once when
// name is not a participant: that will not change by waiting. A failed
// status call is shown as state "?" and asked again.
func WaitActive(ctx context.Context, status func(context.Context) (coordinator.Status, error), name string, out io.Writer) error {
	start := time.Now()
	last, lastSaid := "", start
	tick := time.NewTicker(waitPoll)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := status(cctx)
		cancel()
		state := "?"
		if err == nil {
			state = ""
			for _, p := range st.Participants {
				if p.Name == name {
					state = p.State
				}
			}
			if state == "" {
				return fmt.Errorf("%s: %w (status lists %d others)", name, ErrNotParticipant, len(st.Participants))
			}
		}
		now := time.Now()
		switch {
		case state == coordinator.StateActive:
			fmt.Fprintf(out, "%s  %s is active, after %v\n", now.Format("15:04:05.000"), name, now.Sub(start).Round(100*time.Millisecond))
			return nil
		case state != last:
			fmt.Fprintf(out, "%s  %s is %s\n", now.Format("15:04:05.000"), name, state)
			last, lastSaid = state, now
		case now.Sub(lastSaid) >= waitHeartbeat:
			fmt.Fprintf(out, "%s  %s is still %s, %v so far\n", now.Format("15:04:05.000"), name, state, now.Sub(start).Round(time.Second))
			lastSaid = now
		}
		select {
		case <-ctx.Done():
			why := ""
			if err != nil {
				why = fmt.Sprintf(" (status: %v)", err)
			}
			return fmt.Errorf("%s is still %s after %v%s", name, state, time.Since(start).Round(time.Second), why)
		case <-tick.C:
		}
	}
}
