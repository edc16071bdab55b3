package protocol

// Kind is the type of a decision-log record.
type Kind string

// The record kinds. txlog/doc.go specifies how each is written and read
// back; these comments say what each means to the protocol.
const (
	// KindFormat heads a log file: the format of the records after it.
	// The log writes it; the coordinator never does.
	KindFormat Kind = "format"
	// KindEpoch: a coordinator incarnation started. Transaction ids carry
	// their epoch, so ids of different incarnations never collide.
	KindEpoch Kind = "epoch"
	// KindStaged: the transaction's prepares are out; its outcome is
	// open. Once every participant holds a durable YES vote and this
	// record is durable, the transaction is committed (parallel commits).
	KindStaged Kind = "staged"
	// KindCommit: commit was decided. Durable before any participant is
	// told to commit.
	KindCommit Kind = "commit"
	// KindAbort: abort of a staged transaction was decided. Durable
	// before anyone hears of the abort.
	KindAbort Kind = "abort"
	// KindEnd: the transaction needs nothing more: every participant
	// acknowledged its commit, or no participant had anything to write.
	// Losing it only means commits are re-sent after a restart.
	KindEnd Kind = "end"
	// KindExclude: a participant left the write set (Participants holds
	// its one name). Durable before any transaction commits without its
	// vote; it stays excluded until it rejoins.
	KindExclude Kind = "exclude"
	// KindInclude: an excluded participant caught up and is back in the
	// write set (Participants holds its name). Durable before any
	// transaction needs its vote.
	KindInclude Kind = "include"
	// KindJoin: a participant was added (Participants holds its name, URL
	// where it is served). It starts excluded: it joins the write set
	// once it has caught up (KindInclude).
	KindJoin Kind = "join"
	// KindRemove: a participant was taken out for good (Participants
	// holds its name): it is no longer a member, and no transaction waits
	// for it any more.
	KindRemove Kind = "remove"
)

// IsMembership reports whether k changes who the participants are or
// which of them are in the write set.
func (k Kind) IsMembership() bool {
	return k == KindExclude || k == KindInclude || k == KindJoin || k == KindRemove
}

// Record is one decision-log record. Only the fields of its Kind are set.
type Record struct {
	Kind   Kind
	Format uint64 // KindFormat
	Epoch  uint64 // KindEpoch
	TxID   string // staged, commit, abort, end
	// Participants and Keys are set for staged and commit: who holds the
	// transaction prepared, and the keys it may write, which recovery
	// keeps locked until the transaction is finished. At least one
	// participant; keys sorted, without repeats.
	Participants []string
	Keys         []string
	URL          string // join: where the participant is served
}
