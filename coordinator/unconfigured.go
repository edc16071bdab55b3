package coordinator

import (
	"context"
	"fmt"

	"github.com/twopc/twopc/participant"
)

// unconfigured stands for a participant named in the log but missing
// from the configuration: every call fails, so its transactions stay in
// doubt until the operator configures it again.
type unconfigured struct{ name string }

func (u unconfigured) err() error {
	return fmt.Errorf("participant %q is not configured", u.name)
}

func (u unconfigured) Prepare(context.Context, string, participant.Write) (participant.Vote, error) {
	return participant.Vote{}, u.err()
}
func (u unconfigured) Commit(context.Context, string) error { return u.err() }
func (u unconfigured) Abort(context.Context, string) error  { return u.err() }
func (u unconfigured) Read(context.Context, string) (participant.ReadResult, error) {
	return participant.ReadResult{}, u.err()
}
func (u unconfigured) PreparedTxs(context.Context) ([]participant.PreparedTx, error) {
	return nil, u.err()
}
