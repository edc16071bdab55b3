package coordinator

import "time"

// Observer is told how long the phases of each transaction take, for
// metrics (counts of outcomes are in Status). Its methods must be quick
// and safe for concurrent use.
type Observer interface {
	// Phase reports one phase of one transaction: PhasePrepare, from the
	// first prepare sent to the decision; PhaseCommit, from the decision
	// to the last participant's acknowledgement of the commit.
	Phase(name string, d time.Duration)
	// Membership reports that a participant changed state in the write
	// set: StateExcluded, StateCatchingUp, or StateActive once back.
	Membership(participant, state string)
}

// The phases an Observer hears of.
const (
	PhasePrepare = "prepare"
	PhaseCommit  = "commit"
)

type noObserver struct{}

func (noObserver) Phase(string, time.Duration) {}
func (noObserver) Membership(string, string)   {}
