package protocol

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
)

// Entry is one key's state: missing (Found false, Version 0), or a value
// and its version. A key's version counts its writes since it was
// created: a put on a missing key makes it 1, each later put adds 1, a
// delete removes the key (version 0 again).
type Entry struct {
	Found   bool
	Value   Value
	Version int64
}

// Result is what one op of the branch that ran gives back.
type Result struct {
	Kind    OpKind
	Version int64 // put: the key's new version; get: its version (0 if missing)
	Existed bool  // delete: the key had a value
	Found   bool  // get
	Value   Value // get, when found
}

// Write is a transaction's effect on one key: the key's entry afterwards.
type Write struct {
	Key string
	Entry
}

// Outcome is what running a transaction on a snapshot gives.
type Outcome struct {
	Succeeded bool     // every compare held: the success branch ran
	Results   []Result // one per op of the branch that ran, in order
	Writes    []Write  // the keys that changed, in key order; none: read-only
	// TooLarge: the values its gets return would pass the limit given to
	// Evaluate; it stopped there, and Results and Writes are empty. The
	// transaction must be refused, with nothing written.
	TooLarge bool
}

// Evaluate runs t against a snapshot, read, which returns a key's state
// before the transaction. Ops run in order, each seeing the ones before
// it (a get after a put of the same key returns the put's value). It is
// a pure function: every replica that runs it on the same data gets the
// same Outcome, which is how a coordinator can tell diverged replicas.
//
// maxResultBytes bounds the bytes of the values its gets return (0: no
// bound): one small request must not make a replica, or the coordinator
// that gathers the votes, hold many large values at once.
func Evaluate(t *Txn, read func(key string) Entry, maxResultBytes int) Outcome {
	state := make(map[string]Entry, len(t.Success)+len(t.Compares))
	get := func(k string) Entry {
		e, ok := state[k]
		if !ok {
			e = read(k)
			state[k] = e
		}
		return e
	}
	out := Outcome{Succeeded: true}
	for _, c := range t.Compares {
		if !c.holds(get(c.Key)) {
			out.Succeeded = false
			break
		}
	}
	ops := t.Success
	if !out.Succeeded {
		ops = t.Failure
	}
	changed := make(map[string]bool, len(ops))
	if len(ops) > 0 {
		out.Results = make([]Result, 0, len(ops))
	}
	resultBytes := 0
	for _, o := range ops {
		old := get(o.Key)
		switch o.Kind {
		case OpPut:
			e := Entry{Found: true, Value: o.Value, Version: old.Version + 1}
			state[o.Key], changed[o.Key] = e, true
			out.Results = append(out.Results, Result{Kind: OpPut, Version: e.Version})
		case OpDelete:
			if old.Found { // deleting a missing key changes nothing
				state[o.Key], changed[o.Key] = Entry{}, true
			}
			out.Results = append(out.Results, Result{Kind: OpDelete, Existed: old.Found})
		case OpGet:
			if resultBytes += len(old.Value.Data); maxResultBytes > 0 && resultBytes > maxResultBytes {
				return Outcome{TooLarge: true}
			}
			out.Results = append(out.Results, Result{Kind: OpGet, Found: old.Found, Version: old.Version, Value: old.Value})
		}
	}
	if len(changed) > 0 {
		out.Writes = make([]Write, 0, len(changed))
	}
	for k := range changed {
		out.Writes = append(out.Writes, Write{Key: k, Entry: state[k]})
	}
	slices.SortFunc(out.Writes, func(a, b Write) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// holds evaluates c on e. A value compare on a missing key is false
// whatever its operator (test absence with exists); a missing key's
// version is 0.
func (c Compare) holds(e Entry) bool {
	var order int
	switch c.Target {
	case TargetValue:
		if !e.Found {
			return false
		}
		order = bytes.Compare(e.Value.Data, c.Value.Data)
	case TargetVersion:
		order = cmp.Compare(e.Version, c.Version)
	case TargetExists:
		if e.Found == c.Exists {
			order = 0
		} else {
			order = 1
		}
	}
	switch c.Op {
	case Equal:
		return order == 0
	case NotEqual:
		return order != 0
	case Less:
		return order < 0
	case Greater:
		return order > 0
	}
	return false
}

// Same reports whether two outcomes are identical: the votes of replicas
// holding the same data are.
func (o Outcome) Same(p Outcome) bool {
	return o.Succeeded == p.Succeeded &&
		slices.EqualFunc(o.Results, p.Results, Result.same) &&
		slices.EqualFunc(o.Writes, p.Writes, Write.same)
}

func (r Result) same(s Result) bool {
	return r.Kind == s.Kind && r.Version == s.Version && r.Existed == s.Existed && r.Found == s.Found && r.Value.same(s.Value)
}

func (w Write) same(v Write) bool {
	return w.Key == v.Key && w.Found == v.Found && w.Version == v.Version && w.Value.same(v.Value)
}

func (v Value) same(w Value) bool { return v.Binary == w.Binary && bytes.Equal(v.Data, w.Data) }

func (r Result) String() string {
	switch r.Kind {
	case OpPut:
		return fmt.Sprintf("put v%d", r.Version)
	case OpDelete:
		return fmt.Sprintf("delete existed=%v", r.Existed)
	}
	if !r.Found {
		return "get missing"
	}
	return fmt.Sprintf("get v%d %q", r.Version, r.Value.Data)
}
