package protocol

import "time"

// What a participant (a replica) is asked, and answers, in the
// vocabulary above. The coordinator's messages become Calls; a batch of
// them travels in one request and shares one fsync at the participant.

// Call is one request to a participant.
type Call struct {
	Kind MsgKind  // MsgPrepare, MsgCommit, MsgAbort or MsgRead
	TxID string   // prepare, commit, abort
	Txn  *Txn     // prepare
	Keys []string // read
}

// MsgRead asks for a snapshot of keys (KeyState); it changes nothing.
const MsgRead MsgKind = MsgAskHeld + 1

// CallResult answers a Call: the vote of a prepare, the keys of a read,
// or why the call failed (its effect is then unknown).
type CallResult struct {
	Vote Vote
	Keys []KeyState
	Err  error
}

// KeyState is one key at a participant, from one snapshot: its committed
// entry and, if a transaction holds it prepared, that transaction and the
// entry it will leave if it commits. Only the coordinator, which knows
// every transaction's state, can tell which of the two is current.
type KeyState struct {
	Key     string
	Entry   Entry
	Pending string // id of the transaction holding the key prepared, "" if none
	Next    Entry  // the key's entry once Pending commits
}

// Current returns the key's entry given whether its pending transaction,
// if any, has committed.
func (k KeyState) Current(pendingCommitted bool) Entry {
	if k.Pending != "" && pendingCommitted {
		return k.Next
	}
	return k.Entry
}

// Install is one step of a catch-up at a participant: entries copied from
// another replica, written as they are (versions included).
type Install struct {
	// Fence names the catch-up: an id (CompareTxIDs) greater than that
	// of every transaction started before it, and than that of every
	// earlier catch-up. Reset first empties the replica (every key, every
	// prepared transaction) and sets the participant's fence, if Fence
	// is greater than it: from then on it refuses to prepare any
	// transaction whose id orders before the fence, so that a prepare
	// sent before it was excluded, and delayed until after the copy,
	// cannot land on it. An install without Reset is applied only if its
	// Fence is the participant's: a step of an earlier catch-up, delayed
	// in the network, or a late reset, is refused.
	Reset bool
	Fence string
	// Writes are stored over whatever the key holds (Found false: the
	// key is deleted).
	Writes []Write
}

// PreparedTx is a transaction a participant holds prepared: a durable YES
// vote whose outcome it does not know yet.
type PreparedTx struct {
	TxID  string
	Keys  []string  // the keys it writes, sorted
	Since time.Time // zero when reloaded at start
}

// Digest summarises a replica so that replicas can be compared.
type Digest struct {
	Keys     int64
	Hash     string // hex SHA-256 over the sorted keys, their values, types and versions
	Prepared int64  // prepared transactions still held
}
