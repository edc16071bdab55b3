package protocol

// VoteKind is a participant's answer to prepare.
type VoteKind int

const (
	// VoteNo: the participant refuses; the transaction must abort.
	VoteNo VoteKind = iota
	// VoteYes: the participant holds the writes durably prepared.
	VoteYes
	// VoteReadOnly: the branch that ran writes nothing; the participant
	// holds nothing and needs no decision.
	VoteReadOnly
)

// Vote is a participant's answer to prepare.
type Vote struct {
	Kind VoteKind
	// Conflict: a NO because another transaction holds a key (safe to
	// retry), rather than a refusal.
	Conflict bool
	// TooLarge: a NO because what the transaction reads would pass the
	// participant's limit (Outcome.TooLarge).
	TooLarge bool
	Reason   string // why a NO
	// Succeeded and Results are what running the transaction gave (YES
	// and read-only): every replica must give the same.
	Succeeded bool
	Results   []Result
}

// agrees reports whether two YES or read-only votes describe the same
// outcome, as they do on replicas holding the same data.
func (v *Vote) agrees(w *Vote) bool {
	if v.Kind != w.Kind || v.Succeeded != w.Succeeded || len(v.Results) != len(w.Results) {
		return false
	}
	for i := range v.Results {
		if !v.Results[i].same(w.Results[i]) {
			return false
		}
	}
	return true
}

// MsgKind is what a message asks a participant to do.
type MsgKind int

const (
	MsgPrepare MsgKind = iota // evaluate the transaction, prepare its writes, vote
	MsgCommit                 // apply the prepared writes (idempotent)
	MsgAbort                  // drop them, and refuse a later prepare (idempotent)
	MsgAskHeld                // do you hold the transaction prepared?
)

var msgNames = [...]string{"prepare", "commit", "abort", "ask-held", "read"}

func (k MsgKind) String() string { return msgNames[k] }

// Message is a call the driver makes to a participant. Its answer comes
// back as an event: EvVote, EvAcked or EvHeld, or EvCallFailed.
type Message struct {
	To   string
	Kind MsgKind
}

// ReplyKind is what the client hears.
type ReplyKind int

const (
	ReplyCommitted ReplyKind = iota // the transaction took effect (or had nothing to write)
	ReplyAborted                    // it had no effect; Cause says why
	ReplyUnknown                    // the decision log failed: the outcome is unknown until recovery
)

// Cause is why a transaction aborted.
type Cause int

const (
	CauseConflict    Cause = iota + 1 // another transaction held a key: safe to retry
	CauseUnavailable                  // a participant did not vote, or gave up waiting: safe to retry
	CauseDiverged                     // replicas gave different results: a bug, to report
	CauseTooLarge                     // its results would pass a limit: send less
)

// Reply is the answer to the client.
type Reply struct {
	Kind      ReplyKind
	Cause     Cause  // ReplyAborted
	Reason    string // ReplyAborted, ReplyUnknown
	Succeeded bool   // ReplyCommitted: which branch ran
	Results   []Result
	// ReadOnly: ReplyCommitted of a transaction that wrote nothing (every
	// vote read-only), so no record backs it: a coordinator of several
	// confirms it still leads before passing it on, as for a read.
	ReadOnly bool
}

// Answer is the outcome told to everyone waiting for an answer to their
// question (tx.outcome does not say who asks).
type Answer int

const (
	NoAnswer Answer = iota
	AnswerCommit
	AnswerAbort
)

// EventKind is what happened to a transaction.
type EventKind int

const (
	EvVote       EventKind = iota // From voted (answer to MsgPrepare)
	EvCallFailed                  // the Msg call to From failed: no answer, effect unknown
	EvDurable                     // the Record record is durable
	EvLogFailed                   // the decision log failed
	EvAsked                       // someone (From, if known) asks for the outcome
	EvAcked                       // From acknowledged the Msg call (commit or abort)
	EvHeld                        // From answered MsgAskHeld: Held
	EvRetry                       // the retry timer fired
	// EvExcluded: From left the write set, and that decision is durable
	// (the driver steps every machine with it only then).
	EvExcluded
)

var eventNames = [...]string{"vote", "call-failed", "durable", "log-failed", "asked", "acked", "held", "retry", "excluded"}

func (k EventKind) String() string { return eventNames[k] }

// Event is one input to a Machine.
type Event struct {
	Kind   EventKind
	From   string  // participant name: vote, call-failed, acked, held, excluded; asked (optional)
	Vote   Vote    // EvVote
	Msg    MsgKind // EvCallFailed, EvAcked: which call
	Record Kind    // EvDurable
	Held   bool    // EvHeld
	Err    string  // EvCallFailed, EvLogFailed: what went wrong
}

// Ready is what a step asks the driver to do, in this order:
//
//  1. Queue Records in the decision log, in order (fsync lazily if Lazy:
//     nobody needs them durable yet: a COMMIT's client already has its
//     answer; a STAGED is needed once every vote is in, and Flush asks
//     for it then).
//  2. If Wait, wait until they are durable and report it (EvDurable)
//     before going on.
//  3. Make the calls in Messages, give the Reply to the client and the
//     Answer to everyone waiting for one.
//
// The driver reports each record's durability with EvDurable, except
// END's: nobody waits for it. A machine never asks to send what the
// protocol forbids at that moment; see Machine.ready for the rules.
type Ready struct {
	From, To State // the state change this step made; equal if none
	Records  []Record
	Wait     bool
	Lazy     bool
	// Flush: records queued lazily are needed durable now (the log's
	// Flush).
	Flush    bool
	Messages []Message
	Reply    *Reply
	Answer   Answer
	// Retry asks for an EvRetry after a backoff: some calls failed and
	// must be made again.
	Retry bool
	// Release: the transaction no longer needs its keys locked (set once).
	Release bool
}

// Empty reports whether the step asks for nothing.
func (r *Ready) Empty() bool {
	return r.From == r.To && len(r.Records) == 0 && len(r.Messages) == 0 && r.Reply == nil &&
		r.Answer == NoAnswer && !r.Retry && !r.Release && !r.Flush
}
