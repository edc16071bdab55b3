package protocol

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Value is stored bytes plus the XML-RPC type they arrived as, so that a
// read returns a value in the type it was written with (string or base64).
type Value struct {
	Data   []byte
	Binary bool
}

// OpKind is what one operation of a transaction does.
type OpKind int

const (
	OpPut OpKind = iota
	OpDelete
	OpGet
)

var opNames = [...]string{"put", "delete", "get"}

func (k OpKind) String() string { return opNames[k] }

// ParseOpKind is the inverse of OpKind.String.
func ParseOpKind(s string) (OpKind, error) {
	for i, n := range opNames {
		if n == s {
			return OpKind(i), nil
		}
	}
	return 0, fmt.Errorf("unknown op %q (want put, delete or get)", s)
}

// Op is one operation of a branch. Value is for OpPut only.
type Op struct {
	Kind  OpKind
	Key   string
	Value Value
}

// Writes reports whether the op changes its key.
func (o Op) Writes() bool { return o.Kind != OpGet }

// Target is what a compare looks at.
type Target int

const (
	TargetValue Target = iota
	TargetVersion
	TargetExists
)

var targetNames = [...]string{"value", "version", "exists"}

func (t Target) String() string { return targetNames[t] }

// ParseTarget is the inverse of Target.String.
func ParseTarget(s string) (Target, error) {
	for i, n := range targetNames {
		if n == s {
			return Target(i), nil
		}
	}
	return 0, fmt.Errorf("unknown target %q (want value, version or exists)", s)
}

// CmpOp is a compare's operator.
type CmpOp int

const (
	Equal CmpOp = iota
	NotEqual
	Less
	Greater
)

var cmpNames = [...]string{"==", "!=", "<", ">"}

func (o CmpOp) String() string { return cmpNames[o] }

// ParseCmpOp is the inverse of CmpOp.String.
func ParseCmpOp(s string) (CmpOp, error) {
	for i, n := range cmpNames {
		if n == s {
			return CmpOp(i), nil
		}
	}
	return 0, fmt.Errorf("unknown compare op %q (want ==, !=, < or >)", s)
}

// Compare is one condition of a transaction. Value is the operand of a
// TargetValue compare, Version of TargetVersion, Exists of TargetExists.
type Compare struct {
	Key     string
	Target  Target
	Op      CmpOp
	Value   Value
	Version int64
	Exists  bool
}

// Txn is a transaction: if every compare holds, the Success ops run, else
// the Failure ops; either way as one atomic step. A plain put is a Txn
// with one put in Success.
type Txn struct {
	Compares []Compare
	Success  []Op
	Failure  []Op
}

// Limits bound the size of a transaction.
type Limits struct {
	MaxCompares int // per transaction
	MaxOps      int // per branch
}

// DefaultLimits are those of DESIGN.md: 128 compares, 128 ops per branch.
func DefaultLimits() Limits { return Limits{MaxCompares: 128, MaxOps: 128} }

// The errors Validate returns, by how the wire reports them.
type (
	// InvalidError: the transaction is malformed (-32602 on the wire).
	InvalidError struct{ Msg string }
	// TooLargeError: the transaction exceeds a limit (fault 4).
	TooLargeError struct{ Msg string }
)

func (e *InvalidError) Error() string  { return e.Msg }
func (e *TooLargeError) Error() string { return e.Msg }

// Validate refuses what DESIGN.md refuses: a key written twice in one
// branch, an exists compare with < or >, and sizes past lim. Keys and
// values are checked by the caller (it knows their limits).
func (t *Txn) Validate(lim Limits) error {
	if len(t.Compares) > lim.MaxCompares {
		return &TooLargeError{fmt.Sprintf("%d compares, the limit is %d", len(t.Compares), lim.MaxCompares)}
	}
	for i, c := range t.Compares {
		if c.Target == TargetExists && c.Op != Equal && c.Op != NotEqual {
			return &InvalidError{fmt.Sprintf("compare %d: exists takes == or != only, not %s", i+1, c.Op)}
		}
	}
	for _, b := range []struct {
		name string
		ops  []Op
	}{{"success", t.Success}, {"failure", t.Failure}} {
		if len(b.ops) > lim.MaxOps {
			return &TooLargeError{fmt.Sprintf("%d ops in %s, the limit is %d", len(b.ops), b.name, lim.MaxOps)}
		}
		written := map[string]bool{}
		for i, o := range b.ops {
			if !o.Writes() {
				continue
			}
			if written[o.Key] {
				return &InvalidError{fmt.Sprintf("%s op %d writes key %q a second time", b.name, i+1, o.Key)}
			}
			written[o.Key] = true
		}
	}
	return nil
}

// Keys returns every key the transaction touches (compares and both
// branches), sorted and without repeats: the order in which a
// coordinator locks them, so that transactions never deadlock.
func (t *Txn) Keys() []string {
	var keys []string
	for _, c := range t.Compares {
		keys = append(keys, c.Key)
	}
	for _, o := range t.Success {
		keys = append(keys, o.Key)
	}
	for _, o := range t.Failure {
		keys = append(keys, o.Key)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// WriteKeys returns the keys either branch may write, sorted and without
// repeats: what a STAGED or COMMIT record names.
func (t *Txn) WriteKeys() []string {
	var keys []string
	for _, ops := range [][]Op{t.Success, t.Failure} {
		for _, o := range ops {
			if o.Writes() {
				keys = append(keys, o.Key)
			}
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// ReadOnly reports whether neither branch writes: such a transaction
// needs no vote and no log record.
func (t *Txn) ReadOnly() bool {
	for _, ops := range [][]Op{t.Success, t.Failure} {
		for _, o := range ops {
			if o.Writes() {
				return false
			}
		}
	}
	return true
}

// KeySets returns Keys and WriteKeys, one slice for both when every key
// the transaction names is one it writes (a put, a delete, a multi-key
// write without compares): the caller must not modify either.
func (t *Txn) KeySets() (keys, writes []string) {
	keys = t.Keys()
	if len(t.Compares) > 0 {
		return keys, t.WriteKeys()
	}
	for _, ops := range [][]Op{t.Success, t.Failure} {
		for _, o := range ops {
			if !o.Writes() {
				return keys, t.WriteKeys()
			}
		}
	}
	return keys, keys
}

// NewTxID returns the id of the seq'th transaction of a coordinator's
// epoch: "<epoch>.<seq>". Ids of different incarnations never collide.
func NewTxID(epoch, seq uint64) string {
	return strconv.FormatUint(epoch, 10) + "." + strconv.FormatUint(seq, 10)
}

// EpochOf returns the epoch a transaction id was issued in, or 0 if the
// id is not one of ours.
func EpochOf(id string) uint64 {
	e, _, ok := strings.Cut(id, ".")
	if !ok {
		return 0
	}
	n, err := strconv.ParseUint(e, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// CompareTxIDs orders ids of the form "epoch.seq" by epoch, then by
// sequence number, numerically (1.10 follows 1.9): the order in which
// coordinators issued them.
func CompareTxIDs(a, b string) int {
	ae, as, _ := strings.Cut(a, ".")
	be, bs, _ := strings.Cut(b, ".")
	if c := compareNumbers(ae, be); c != 0 {
		return c
	}
	return compareNumbers(as, bs)
}

// compareNumbers orders decimal strings without leading zeros.
func compareNumbers(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}
