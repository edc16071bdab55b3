package drill

import (
	"fmt"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
	"github.com/twopc/twopc/protocol"
)

// The checker's model is the whole key space the history touches, with
// versions: a transaction's compares and gets see several keys at once,
// so keys are not independent registers once transactions join the load.
// Its step for a transaction is protocol.Evaluate, the function every
// participant runs, so the model cannot drift from the server's
// semantics; put, get and delete are modelled as the one-op transactions
// they are inside (a put on a missing key makes version 1, each later put
// adds 1, a delete makes the key missing again, version 0).
//
// Porcupine's search is exponential in the worst case, so the model keeps
// it small where it can: the state is a slice of comparable entries with
// a hash (porcupine's cache compares states often), and the history is
// partitioned into groups of keys that no operation links (see
// partition): without transactions every key is its own group, which is
// the per-key check the drill always had.

// kv is the model's state: one entry per key of the history, by index.
// A step never changes a kv in place; it returns a new one.
type kv []entry

// entry is one key: missing (found false, version 0), or a value and its
// version.
type entry struct {
	found   bool
	value   string
	version int64
}

// hash is FNV-1a over the entries, for porcupine's cache of visited
// states: equal states hash equal.
func (s kv) hash() uint64 {
	h := uint64(14695981039346656037)
	mix := func(b byte) { h = (h ^ uint64(b)) * 1099511628211 }
	for _, e := range s {
		if e.found {
			mix(1)
		}
		for v := uint64(e.version); v != 0; v >>= 8 {
			mix(byte(v))
		}
		for i := 0; i < len(e.value); i++ {
			mix(e.value[i])
		}
		mix(0)
	}
	return h
}

func (s kv) with(i int, e entry) kv {
	n := slices.Clone(s)
	n[i] = e
	return n
}

// observed reports whether a get (or a final read) that returned o could
// have read e. A found get with Version 0 did not learn the version (a
// plain get does not return it).
func (e entry) observed(o Op) bool {
	if !o.Found {
		return !e.found
	}
	return e.found && e.value == o.Value && (o.Version == 0 || o.Version == e.version)
}

func (e entry) protocol() protocol.Entry {
	if !e.found {
		return protocol.Entry{}
	}
	return protocol.Entry{Found: true, Value: protocol.Value{Data: []byte(e.value)}, Version: e.version}
}

// step is the input of one porcupine operation: one Op, or the final
// reads of one key at every replica, with the keys it touches as indices
// into the state.
type step struct {
	op    Op
	final []Op          // final reads at every replica, of one key or of a group of keys
	keys  []int         // indices of the keys it touches, first the one it is about
	txn   *protocol.Txn // op's transaction, decoded once
	// unknown numbers an operation of unknown outcome that may have
	// written (from 1; 0 for any other), which the checker splits into
	// an early half and a late one (see worlds).
	unknown int
	late    bool
	// once: an early half whose late half is left out (see checkGroup):
	// it took effect during its call, or never.
	once bool
}

func (in *step) String() string {
	if in.final != nil {
		var parts []string
		for _, r := range in.final {
			parts = append(parts, r.String())
		}
		return "final: " + strings.Join(parts, "; ")
	}
	if in.late {
		return "(later) " + in.op.String()
	}
	return in.op.String()
}

// model is the checker's model over the keys of one history.
type model struct {
	names []string       // every key, by index
	index map[string]int // key -> index
}

func newModel(ops []Op) *model {
	m := &model{index: map[string]int{}}
	add := func(k string) {
		if _, ok := m.index[k]; !ok {
			m.index[k] = len(m.names)
			m.names = append(m.names, k)
		}
	}
	for _, o := range ops {
		if o.Kind == Transaction {
			for _, k := range o.Txn.Keys() {
				add(k)
			}
			continue
		}
		add(o.Key)
	}
	return m
}

// step is the model's transition: whether the operation could have
// returned what it did in state s, and the state after it. An operation
// of Unknown outcome is here only if it may have written; its answer
// (there is none) is not checked.
func (m *model) step(s kv, in *step) (bool, kv) {
	if in.final != nil {
		for _, r := range in.final {
			if !s[m.index[r.Key]].observed(r) {
				return false, s
			}
		}
		return true, s
	}
	o, k := in.op, in.keys[0]
	switch o.Kind {
	case Put:
		return true, s.with(k, entry{found: true, value: o.Value, version: s[k].version + 1})
	case Delete:
		if o.Outcome == OK && o.Existed != s[k].found {
			return false, s
		}
		return true, s.with(k, entry{})
	case Get:
		return s[k].observed(o), s
	}
	// No bound on results: the drill's values are a few bytes.
	out := protocol.Evaluate(in.txn, func(key string) protocol.Entry { return s[m.index[key]].protocol() }, 0)
	if o.Outcome == OK && !answered(o.Txn, out) {
		return false, s
	}
	if len(out.Writes) == 0 {
		return true, s
	}
	n := slices.Clone(s)
	for _, w := range out.Writes {
		n[m.index[w.Key]] = entry{found: w.Found, value: string(w.Value.Data), version: w.Version}
	}
	return true, n
}

// answered reports whether out is the answer the drill recorded for t.
func answered(t *TxnOp, out protocol.Outcome) bool {
	if out.Succeeded != t.Succeeded || len(out.Results) != len(t.Results) {
		return false
	}
	for i, r := range out.Results {
		got := t.Results[i]
		switch r.Kind {
		case protocol.OpPut:
			if got.Version != r.Version {
				return false
			}
		case protocol.OpDelete:
			if got.Existed != r.Existed {
				return false
			}
		case protocol.OpGet:
			if got.Found != r.Found || got.Version != r.Version || r.Found && got.Value != string(r.Value.Data) {
				return false
			}
		}
	}
	return true
}

// describe shows the keys that have a value, without the prefix they
// share: {k0="c1.2"@v3, k5="c0.7"@v1}.
func (m *model) describe(s kv) string {
	prefix := ""
	if len(m.names) > 1 {
		prefix = m.names[0]
		for _, n := range m.names[1:] {
			for !strings.HasPrefix(n, prefix) {
				prefix = prefix[:len(prefix)-1]
			}
		}
	}
	var parts []string
	for i, e := range s {
		if e.found {
			parts = append(parts, fmt.Sprintf("%s=%q@v%d", strings.TrimPrefix(m.names[i], prefix), e.value, e.version))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// partition splits a history into groups of keys that no operation
// links: a transaction links the keys it touches. Keys in different
// groups are independent, so the history is linearizable iff each
// group's is (P-compositionality). Groups come in the order of their
// smallest key index, so that the split is the same for the same history.
//
// Within a group, the final reads of all its keys become one operation:
// the cluster has settled and no client is left, so nothing takes effect
// between two of them, and an unknown transaction cannot be split around
// them (half of it seen, half not). They do not link groups: across
// independent keys it makes no difference.
func (m *model) partition(ops []porcupine.Operation) [][]porcupine.Operation {
	root := make([]int, len(m.names))
	for i := range root {
		root[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		if root[i] != i {
			root[i] = find(root[i])
		}
		return root[i]
	}
	for _, op := range ops {
		keys := op.Input.(*step).keys
		for _, k := range keys[1:] {
			a, b := find(keys[0]), find(k)
			root[max(a, b)] = min(a, b)
		}
	}
	groups := map[int][]porcupine.Operation{}
	finals := map[int]int{} // group -> index of its final reads in the group
	for _, op := range ops {
		in := op.Input.(*step)
		r := find(in.keys[0])
		i, seen := finals[r]
		switch {
		case in.final == nil:
			groups[r] = append(groups[r], op)
		case !seen:
			finals[r] = len(groups[r])
			merged := *in
			op.Input = &merged
			groups[r] = append(groups[r], op)
		default:
			g := groups[r]
			merged := *g[i].Input.(*step)
			merged.final = append(slices.Clip(merged.final), in.final...)
			merged.keys = append(slices.Clip(merged.keys), in.keys...)
			g[i].Input = &merged
			g[i].Call, g[i].Return = min(g[i].Call, op.Call), max(g[i].Return, op.Return)
		}
	}
	var out [][]porcupine.Operation
	for i := range m.names {
		if g, ok := groups[i]; ok {
			out = append(out, g)
		}
	}
	return out
}

// keysOf names the keys a group of operations touches, sorted.
func (m *model) keysOf(ops []porcupine.Operation) []string {
	var keys []string
	for _, op := range ops {
		for _, k := range op.Input.(*step).keys {
			keys = append(keys, m.names[k])
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}
