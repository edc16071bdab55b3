package drill

import (
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// The checker's porcupine state is a set of worlds: every state the key
// space may be in, as far as the operations linearized so far tell. This
// is porcupine's power-set construction (NondeterministicModel), typed,
// and it is what keeps the search small in the face of operations of
// unknown outcome.
//
// An operation of unknown outcome that may have written took effect once
// at some point after its call, or never. A deterministic model leaves it
// pending to the end of the history, and porcupine tries it at every
// point, each time exploring everything up to the read that contradicts
// it: after a few coordinator kills the search never ends. Here it is two
// operations instead, both of which porcupine places at once, each keeping
// both possibilities in the set: its early half, over the call (Call to
// Return), either took effect there or not; its late half, from just after
// Return to the end of the history, takes effect there if the early half
// did not, or never. A call that committed before the coordinator died,
// and one that recovery committed after it restarted, are both found
// without backtracking, as long as no other write to its keys came
// between; when one did, porcupine has to move the late half past it, and
// that search is what can still run out of time (a minute of an early
// drill, all its keys in one group, did). A world remembers which early
// halves took effect until their late halves are placed, so that an
// operation never takes effect twice. Check first tries each group with
// the early halves alone (once: during the call, or never), which keeps no
// marks and needs no search for where they took effect (see checkGroup).

// world is one possible state: the key space, and the unknown operations
// (by number, sorted) whose early half took effect and whose late half is
// not yet placed.
type world struct {
	kv    kv
	early string // sorted numbers of unknown operations, as bytes of 4
}

func (w world) hash() uint64 {
	h := w.kv.hash()
	for i := 0; i < len(w.early); i++ {
		h = (h ^ uint64(w.early[i])) * 1099511628211
	}
	return h
}

func (w world) equal(v world) bool { return w.early == v.early && slices.Equal(w.kv, v.kv) }

// mark returns w with unknown operation n marked, or unmarked.
func (w world) mark(n int, on bool) world {
	b := []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	var ids []string
	for i := 0; i < len(w.early); i += 4 {
		if id := w.early[i : i+4]; id != string(b) {
			ids = append(ids, id)
		}
	}
	if on {
		ids = append(ids, string(b))
		slices.Sort(ids)
	}
	return world{kv: w.kv, early: strings.Join(ids, "")}
}

func (w world) marked(n int) bool {
	b := string([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	for i := 0; i < len(w.early); i += 4 {
		if w.early[i:i+4] == b {
			return true
		}
	}
	return false
}

// worlds is a set of worlds, sorted by hash; it never changes once built.
type worlds struct {
	ws     []world
	hashes []uint64
}

// add puts w into the set being built, unless it is there already.
func (set *worlds) add(w world) {
	h := w.hash()
	i, _ := slices.BinarySearch(set.hashes, h)
	for j := i; j < len(set.hashes) && set.hashes[j] == h; j++ {
		if set.ws[j].equal(w) {
			return
		}
	}
	set.hashes = slices.Insert(set.hashes, i, h)
	set.ws = slices.Insert(set.ws, i, w)
}

func (set *worlds) equal(o *worlds) bool {
	if !slices.Equal(set.hashes, o.hashes) {
		return false
	}
	for _, w := range set.ws {
		if !slices.ContainsFunc(o.ws, w.equal) {
			return false
		}
	}
	return true
}

func (set *worlds) hash() uint64 {
	var h uint64
	for _, x := range set.hashes {
		h = (h ^ x) * 1099511628211
	}
	return h
}

// stepSet takes every world of set through the operation.
func (m *model) stepSet(set *worlds, in *step) (bool, *worlds) {
	next := &worlds{}
	for _, w := range set.ws {
		switch {
		case in.unknown == 0:
			if ok, n := m.step(w.kv, in); ok {
				next.add(world{kv: n, early: w.early})
			}
		case in.once:
			next.add(w)
			_, n := m.step(w.kv, in)
			next.add(world{kv: n, early: w.early})
		case !in.late:
			next.add(w)
			_, n := m.step(w.kv, in)
			next.add(world{kv: n, early: w.early}.mark(in.unknown, true))
		case w.marked(in.unknown):
			next.add(w.mark(in.unknown, false))
		default:
			next.add(w)
			_, n := m.step(w.kv, in)
			next.add(world{kv: n, early: w.early})
		}
	}
	return len(next.ws) > 0, next
}

// porcupine is the model as porcupine takes it, starting from init (nil:
// every key missing).
func (m *model) porcupine(init kv) porcupine.Model {
	if init == nil {
		init = make(kv, len(m.names))
	}
	return porcupine.Model{
		Partition: m.partition,
		Init: func() any {
			set := &worlds{}
			set.add(world{kv: init})
			return set
		},
		Step: func(state, input, _ any) (bool, any) {
			return m.stepSet(state.(*worlds), input.(*step))
		},
		Equal:             func(a, b any) bool { return a.(*worlds).equal(b.(*worlds)) },
		Hash:              func(state any) uint64 { return state.(*worlds).hash() },
		DescribeOperation: func(input, _ any) string { return input.(*step).String() },
		DescribeState: func(state any) string {
			var parts []string
			for _, w := range state.(*worlds).ws {
				parts = append(parts, m.describe(w.kv))
			}
			return strings.Join(parts, " or ")
		},
	}
}
