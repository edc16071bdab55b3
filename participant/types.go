package participant

import "fmt"

// Op is what a write does to its key.
type Op int

const (
	OpPut Op = iota
	OpDelete
)

func (o Op) String() string {
	if o == OpDelete {
		return "delete"
	}
	return "put"
}

// ParseOp is the inverse of Op.String.
func ParseOp(s string) (Op, error) {
	switch s {
	case "put":
		return OpPut, nil
	case "delete":
		return OpDelete, nil
	}
	return 0, fmt.Errorf("unknown op %q (want put or delete)", s)
}

// Value is stored bytes plus the XML-RPC type they arrived as, so that get
// returns a value in the type it was put with (string or base64).
type Value struct {
	Data   []byte
	Binary bool
}

// Write is the single-key change one transaction makes.
type Write struct {
	Key   string
	Op    Op
	Value Value // ignored for OpDelete
}

// Vote is a participant's answer to prepare.
type Vote struct {
	Yes bool
	// Existed tells whether the key had a committed value when it was
	// locked; it stays true until the transaction resolves because the
	// key cannot change meanwhile. delete reports it.
	Existed bool
	// Reason explains a NO vote.
	Reason string
	// Conflict is true when the NO is because another transaction holds
	// the key (safe to retry), false when the transaction was refused.
	Conflict bool
}

// ReadResult is a consistent snapshot of one key at a participant: its
// committed value and, if a transaction has the key prepared, that
// transaction and its write. The coordinator, which knows every
// transaction's state, decides which of the two is current.
type ReadResult struct {
	Found   bool
	Value   Value
	Pending string // id of the transaction holding the key, "" if none
	Write   Write  // the pending transaction's write
}

// Digest summarises a replica so that replicas can be compared.
type Digest struct {
	Keys     int64
	Hash     string // hex SHA-256 over the sorted key/value pairs
	Prepared int64  // prepared transactions still held
}
