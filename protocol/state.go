package protocol

import "fmt"

// State is where a transaction is, as its coordinator sees it. A machine
// changes state only in become, which refuses every move not in
// legalMoves.
type State int

const (
	// Preparing: STAGED is queued and the prepares are out. Nobody has
	// heard an outcome, so a participant's question aborts it on the spot.
	Preparing State = iota
	// Committing: committed (every vote YES and STAGED durable), and the
	// client may have heard so. The COMMIT record is on its way to disk;
	// until it is there no participant may hear commit (one that applied
	// a commit forgets it held the transaction, and recovery must not
	// take that for a missing vote), so questions wait.
	Committing
	// Committed: COMMIT is durable. Every participant is told commit until
	// it acknowledges.
	Committed
	// Aborting: abort decided, the ABORT record is on its way to disk.
	// Nobody may hear of the abort before it is there: recovery, finding
	// every vote and STAGED, would otherwise commit it.
	Aborting
	// Aborted: ABORT is durable; every participant is told once. One that
	// misses it asks, and hears abort.
	Aborted
	// Resolving: a STAGED transaction of an earlier life without an
	// outcome. The participants are asked whether each still holds it
	// prepared: if all do, every vote was YES and it commits; if one does
	// not, it never voted YES and it aborts. Questions wait meanwhile.
	Resolving
	// Finished: nothing more to do; the coordinator forgets it.
	Finished
	// Failed: the decision log failed under it. Its outcome is unknown
	// until the coordinator restarts and recovers from the log.
	Failed
)

var stateNames = [...]string{"preparing", "committing", "committed", "aborting", "aborted", "resolving", "finished", "failed"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// legalMoves lists every state change a machine may make. Failed is
// reachable from every state that writes a record.
var legalMoves = map[State][]State{
	Preparing:  {Committing, Aborting, Finished, Failed}, // Finished: nothing to write anywhere
	Committing: {Committed, Failed},
	Committed:  {Finished, Failed},
	Aborting:   {Aborted, Failed},
	Aborted:    {Finished},
	Resolving:  {Committing, Aborting},
}

// InDoubt reports whether a transaction in s is committed, or may be,
// without every participant having applied it.
func (s State) InDoubt() bool { return s == Committing || s == Committed || s == Resolving }
