package drill

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Verdict is what Check concludes about a history.
type Verdict struct {
	// Result is porcupine's: Ok, Illegal, or Unknown when the search ran
	// out of time (which proves nothing either way).
	Result porcupine.CheckResult
	// Checked counts the operations given to porcupine: every OK one, and
	// every put or delete of Unknown outcome.
	Checked int
	// BadKeys are the keys whose history is not linearizable.
	BadKeys []string
	info    porcupine.LinearizationInfo
	hasInfo bool
}

// Linearizable reports whether the history was proved linearizable.
func (v Verdict) Linearizable() bool { return v.Result == porcupine.Ok }

// Check decides whether h is linearizable for a key-value store whose
// keys are independent registers (absent, or holding a string), with
// porcupine. timeout bounds the search (0: none).
//
// What each operation contributes:
//   - OK: took effect exactly once between Call and Return, with the
//     result it returned.
//   - Failed: no effect at all; left out. If its write shows up in a read,
//     that read matches no write and the history is illegal.
//   - Unknown put or delete: may have taken effect at any time after
//     Call, or never. Its return is moved past the end of the history (so
//     it may be placed last, which is the same as never), and its result
//     is not checked.
//   - Unknown get: observes nothing; left out.
//   - Final reads (Replica set), made at each participant once the
//     cluster has settled, are merged per key into one operation that
//     observes every replica at once: a write may come before it or after
//     it, never between two replicas' reads, so replicas that disagree
//     make the history illegal.
//
// Written values must be unique per put (the drill makes them so):
// otherwise a read of a lost write could be explained by another put of
// the same value.
func Check(h History, timeout time.Duration) Verdict {
	ops := toPorcupine(h.Ops)
	res, info := porcupine.CheckOperationsVerbose(kvModel, ops, timeout)
	v := Verdict{Result: res, Checked: len(ops), info: info, hasInfo: true}
	if res == porcupine.Illegal {
		v.BadKeys = badKeys(ops, timeout)
	}
	return v
}

// finalRead is one key read at every replica of a settled cluster.
type finalRead struct {
	Key   string
	Reads []Op // one per replica
}

func (f finalRead) String() string {
	var parts []string
	for _, r := range f.Reads {
		parts = append(parts, r.String())
	}
	return "final: " + strings.Join(parts, "; ")
}

// toPorcupine turns the history into porcupine operations.
func toPorcupine(ops []Op) []porcupine.Operation {
	var end int64
	for _, o := range ops {
		end = max(end, o.Call, o.Return)
	}
	end++ // after every observed event: "never returned"
	out := make([]porcupine.Operation, 0, len(ops))
	finals := map[string]int{} // key -> index in out of its final read
	for _, o := range ops {
		switch {
		case o.Replica != "":
			i, ok := finals[o.Key]
			if !ok {
				i = len(out)
				finals[o.Key] = i
				out = append(out, porcupine.Operation{ClientId: o.Client, Input: finalRead{Key: o.Key}, Call: o.Call, Return: o.Return})
			}
			f := out[i].Input.(finalRead)
			f.Reads = append(f.Reads, o)
			out[i].Input = f
			out[i].Call, out[i].Return = min(out[i].Call, o.Call), max(out[i].Return, o.Return)
		case o.Outcome == Failed, o.Outcome == Unknown && o.Kind == Get:
			continue
		case o.Outcome == Unknown:
			out = append(out, porcupine.Operation{ClientId: o.Client, Input: o, Call: o.Call, Return: end})
		case o.Outcome == OK:
			out = append(out, porcupine.Operation{ClientId: o.Client, Input: o, Call: o.Call, Return: o.Return})
		default:
			panic(fmt.Sprintf("drill: operation with outcome %q", o.Outcome))
		}
	}
	return out
}

// keyOf is the key an operation's input is about.
func keyOf(input any) string {
	if f, ok := input.(finalRead); ok {
		return f.Key
	}
	return input.(Op).Key
}

// badKeys checks each key on its own to name the illegal ones.
func badKeys(ops []porcupine.Operation, timeout time.Duration) []string {
	var bad []string
	for _, part := range partitionByKey(ops) {
		if porcupine.CheckOperationsTimeout(kvModel, part, timeout) == porcupine.Illegal {
			bad = append(bad, keyOf(part[0].Input))
		}
	}
	sort.Strings(bad)
	return bad
}

// register is the state of one key: comparable, so porcupine's default
// equality works.
type register struct {
	present bool
	value   string
}

func partitionByKey(ops []porcupine.Operation) [][]porcupine.Operation {
	byKey := map[string][]porcupine.Operation{}
	var keys []string
	for _, op := range ops {
		k := keyOf(op.Input)
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], op)
	}
	sort.Strings(keys)
	out := make([][]porcupine.Operation, len(keys))
	for i, k := range keys {
		out[i] = byKey[k]
	}
	return out
}

// observed reports whether get o could have read s.
func (s register) observed(o Op) bool {
	if !o.Found {
		return !s.present
	}
	return s.present && s.value == o.Value
}

var kvModel = porcupine.Model{
	// Keys are independent, so a history is linearizable iff each key's
	// is (P-compositionality): this keeps the search small.
	Partition: partitionByKey,
	Init:      func() any { return register{} },
	Step: func(state, input, _ any) (bool, any) {
		s := state.(register)
		if f, ok := input.(finalRead); ok {
			for _, r := range f.Reads {
				if !s.observed(r) {
					return false, s
				}
			}
			return true, s
		}
		switch o := input.(Op); o.Kind {
		case Put:
			return true, register{present: true, value: o.Value}
		case Delete:
			if o.Outcome == Unknown {
				return true, register{}
			}
			return o.Existed == s.present, register{}
		default: // Get, always OK here
			return s.observed(o), s
		}
	},
	DescribeOperation: func(input, _ any) string { return input.(fmt.Stringer).String() },
	DescribeState: func(state any) string {
		s := state.(register)
		if !s.present {
			return "(absent)"
		}
		return fmt.Sprintf("%q", s.value)
	},
}

// Visualize writes porcupine's HTML visualization of the checked history,
// with the drill's events (faults) as annotations.
func (v Verdict) Visualize(path string, events []Event) error {
	if !v.hasInfo {
		return fmt.Errorf("drill: no linearization info to visualize")
	}
	info := v.info
	var anns []porcupine.Annotation
	for _, e := range events {
		anns = append(anns, porcupine.Annotation{Tag: "faults", Start: e.Start, End: e.End, Description: e.What})
	}
	info.AddAnnotations(anns)
	return porcupine.VisualizePath(kvModel, info, path)
}
