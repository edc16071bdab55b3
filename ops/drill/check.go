package drill

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"
)

// Verdict is what Check concludes about a history.
type Verdict struct {
	// Result is porcupine's: Ok, Illegal, or Unknown when the search ran
	// out of time or memory (which proves nothing either way).
	Result porcupine.CheckResult
	// Checked counts the operations checked: every OK one, every write
	// of Unknown outcome, and the final reads of each key as one.
	Checked int
	// Groups is the number of groups of keys checked one by one (see
	// model.partition).
	Groups int
	// UnknownWrites counts the writes of Unknown outcome; Seen those of
	// them that a read showed had taken effect (see pin).
	UnknownWrites, Seen int
	// BadKeys are the keys whose history is not linearizable: every key
	// of each group of keys that transactions link (see model.partition)
	// and that porcupine could not linearize.
	BadKeys []string
	// Undecided are the keys of the groups whose search ran out of time
	// (TimedOut) or memory (OutOfMemory).
	Undecided []string
	// TimedOut: the search of some groups ran out of time.
	TimedOut bool
	// OutOfMemory, if not 0, is the memory bound of CheckBounded, in
	// bytes, that the search of some groups reached: it was stopped there.
	OutOfMemory int64
	// Segments counts the pieces the groups were cut into (see segments),
	// at least one per group.
	Segments int
	// Searched counts the groups that needed the full search: those not
	// proved linearizable with every unknown write taking effect during
	// its call or never (see checkGroup).
	Searched int
	// What Visualize draws: the verbose search's info (Check), or the page
	// a child drew (CheckBounded), or why there is none.
	info         porcupine.LinearizationInfo
	model        porcupine.Model
	hasInfo      bool
	html         []byte
	visualizeErr error
}

// Linearizable reports whether the history was proved linearizable.
func (v Verdict) Linearizable() bool { return v.Result == porcupine.Ok }

// Illegal reports whether the history was proved not linearizable.
func (v Verdict) Illegal() bool { return v.Result == porcupine.Illegal }

// String is the verdict with what it took to reach it, for the drill's
// report.
func (v Verdict) String() string {
	s := string(v.Result)
	if v.Result == porcupine.Unknown {
		s = fmt.Sprintf("Unknown (the search %s on the keys %q: nothing proved either way)", v.Stopped(), v.Undecided)
	}
	return fmt.Sprintf("%s: %d operations in %d groups of keys, %d segments (%d groups searched in full); %d writes of unknown outcome, %d of them seen to take effect",
		s, v.Checked, v.Groups, v.Segments, v.Searched, v.UnknownWrites, v.Seen)
}

// Stopped says what stopped the search of the Undecided groups: "timed
// out", "reached its memory bound of 200 MiB", or both.
func (v Verdict) Stopped() string {
	memory := fmt.Sprintf("reached its memory bound of %s", mib(v.OutOfMemory))
	switch {
	case v.TimedOut && v.OutOfMemory > 0:
		return "timed out or " + memory
	case v.OutOfMemory > 0:
		return memory
	}
	return "timed out"
}

// Check decides whether h is linearizable for a key-value store with
// versions and transactions (see model.go), with porcupine. timeout
// bounds the search (0: none); past it the result is Unknown. Nothing
// bounds its memory: CheckBounded does.
//
// What each operation contributes:
//   - OK: took effect exactly once between Call and Return, with the
//     result it returned.
//   - Failed: no effect at all; left out. If its write shows up in a read,
//     that read matches no write and the history is illegal.
//   - Unknown put, delete or writing txn: may have taken effect at any
//     time after Call, or never; its result is not checked. If a read
//     returned a value that only it wrote, it took effect, before that
//     read returned (pin). Otherwise it is split in two (see states.go):
//     an early half over the call, and a late half from its return to
//     past the end of the history (placed last, it is the same as never).
//   - Unknown get or read-only txn: observes nothing; left out.
//   - Final reads (Replica set), made at each participant once the
//     cluster has settled, are merged per key into one operation that
//     observes every replica at once, value and version: a write may
//     come before it or after it, never between two replicas' reads, so
//     replicas that disagree make the history illegal.
//
// The groups of keys that transactions link (model.partition) are
// checked one by one, each first with every unknown write not pinned
// taking effect during its call or never (checkGroup): if that history is
// linearizable, so is the real one, and proving it needs no search for
// where those writes took effect. Only a group that fails this is
// searched in full (which is exponential in the worst case).
//
// Written values should be unique per put (the random load makes them
// so): otherwise a read of a lost write could be explained by another put
// of the same value. Where they are not (the bank drill's balances), pin
// does not apply; versions and CheckBank make up for the rest.
func Check(h History, timeout time.Duration) Verdict {
	c := newChecker(h)
	deadline := deadlineOf(timeout)
	for i := range c.groups {
		c.add(i, c.decide(i, deadline))
	}
	if c.illegal != nil {
		// Again, verbosely, for the visualization: only the groups that
		// failed, whose search has ended once already.
		c.v.info = c.verbose(c.illegal, timeout)
		c.v.hasInfo = true
	}
	return c.v
}

// checker is a history as the search takes it, split into its groups of
// keys, and the verdict on the groups decided so far.
type checker struct {
	m       *model
	groups  [][]porcupine.Operation
	events  []Event // for the visualization
	v       Verdict
	illegal []int // the groups found not linearizable
}

func newChecker(h History) *checker {
	m := newModel(h.Ops)
	ops, unknowns, seen := toPorcupine(h.Ops, m)
	groups := m.partition(ops)
	// Each unknown write not seen is two operations, its halves.
	v := Verdict{Result: porcupine.Ok, Checked: len(ops) - (unknowns - seen), UnknownWrites: unknowns, Seen: seen,
		Groups: len(groups), model: m.porcupine(nil)}
	return &checker{m: m, groups: groups, events: h.Events, v: v}
}

// decision is what the search concluded of one group of keys.
type decision struct {
	Result   porcupine.CheckResult `json:"result"`
	Segments int                   `json:"segments,omitempty"`
	Searched bool                  `json:"searched,omitempty"`
	// OutOfMemory: the search was stopped at CheckBounded's memory bound
	// (Result Unknown).
	OutOfMemory bool `json:"-"`
}

// deadlineOf is when a search bounded by timeout must end (zero: never).
func deadlineOf(timeout time.Duration) time.Time {
	if timeout == 0 {
		return time.Time{}
	}
	return time.Now().Add(timeout)
}

// decide searches group i until deadline (zero: no bound).
func (c *checker) decide(i int, deadline time.Time) decision {
	var left time.Duration // 0: no bound
	if !deadline.IsZero() {
		if left = time.Until(deadline); left <= 0 {
			return decision{Result: porcupine.Unknown}
		}
	}
	res, segments, searched := c.m.checkGroup(c.groups[i], left)
	return decision{Result: res, Segments: segments, Searched: searched}
}

// add counts group i's decision into the verdict.
func (c *checker) add(i int, d decision) {
	c.v.Segments += d.Segments
	if d.Searched {
		c.v.Searched++
	}
	switch d.Result {
	case porcupine.Illegal:
		c.v.BadKeys = append(c.v.BadKeys, c.m.keysOf(c.groups[i])...)
		c.illegal = append(c.illegal, i)
		c.v.Result = porcupine.Illegal
	case porcupine.Unknown:
		c.v.Undecided = append(c.v.Undecided, c.m.keysOf(c.groups[i])...)
		c.v.TimedOut = c.v.TimedOut || !d.OutOfMemory
		if c.v.Result == porcupine.Ok {
			c.v.Result = porcupine.Unknown
		}
	}
}

// verbose searches the groups again, keeping what porcupine's
// visualization draws, annotated with the drill's events.
func (c *checker) verbose(groups []int, timeout time.Duration) porcupine.LinearizationInfo {
	var ops []porcupine.Operation
	for _, i := range groups {
		ops = append(ops, c.groups[i]...)
	}
	_, info := porcupine.CheckOperationsVerbose(c.v.model, ops, timeout)
	var anns []porcupine.Annotation
	for _, e := range c.events {
		anns = append(anns, porcupine.Annotation{Tag: "faults", Start: e.Start, End: e.End, Description: e.What})
	}
	info.AddAnnotations(anns)
	return info
}

// checkGroup checks one group of keys: first with every write of
// unknown outcome taking effect during its call or never (their late
// halves left out), which the set of worlds (states.go) the checker keeps
// covers without a search, and a segment at a time (see segments); if
// that fails (or runs out of time), whole and as it is.
// It returns the result, the number of segments, and whether it searched.
func (m *model) checkGroup(g []porcupine.Operation, timeout time.Duration) (res porcupine.CheckResult, segments int, searched bool) {
	start := time.Now()
	var once []porcupine.Operation
	for _, op := range g {
		switch in := op.Input.(*step); {
		case in.late:
		case in.unknown != 0:
			early := *in
			early.once = true
			op.Input = &early
			once = append(once, op)
		default:
			once = append(once, op)
		}
	}
	segs, starts := m.segments(once)
	if len(once) < len(g) || len(segs) > 1 {
		res = porcupine.Ok
		for i, seg := range segs {
			pm := m.porcupine(starts[i])
			pm.Partition = nil
			if res = porcupine.CheckOperationsTimeout(pm, seg, timeout); res != porcupine.Ok {
				break
			}
		}
		if res == porcupine.Ok {
			return porcupine.Ok, len(segs), false
		}
		if timeout > 0 {
			timeout = max(timeout-time.Since(start), time.Nanosecond)
		}
	}
	pm := m.porcupine(nil)
	pm.Partition = nil
	return porcupine.CheckOperationsTimeout(pm, g, timeout), 1, len(once) < len(g)
}

// segments cuts a group's operations at each cut: an OK transaction that
// writes nothing, reads every key of the group, and overlaps no other
// operation. Every operation is then linearized wholly before a cut or
// wholly after it, and a cut fixes the state of every key; so the group
// is linearizable if and only if each segment is, each ending with its
// cut and the next starting from the state the cut read. Split so, a long
// history costs porcupine memory quadratic in its segments' length, not
// in its own. It returns the segments, in order, and the state each
// starts from (nil: every key missing). Where an unknown write's late
// half is in ops there is no cut past its call, as it spans them.
//
// A cut at a read that overlapped other operations would still never
// accept a history that is not linearizable (it is checked as the last
// step of its segment, and a segment holds exactly the operations called
// after the previous cut's call, so real-time order holds across them),
// but it could refuse one that is: hence only isolated ones.
func (m *model) segments(ops []porcupine.Operation) (segs [][]porcupine.Operation, starts []kv) {
	ops = slices.Clone(ops)
	slices.SortStableFunc(ops, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
	group := m.keysOf(ops)
	var init kv
	from, last := 0, int64(math.MinInt64) // last: the latest return so far
	for i, op := range ops {
		isolated := op.Call > last && (i+1 == len(ops) || op.Return < ops[i+1].Call)
		last = max(last, op.Return)
		if !isolated || i+1 == len(ops) {
			continue
		}
		if s, ok := m.readsAll(op.Input.(*step), group); ok {
			segs, starts = append(segs, ops[from:i+1]), append(starts, init)
			from, init = i+1, s
		}
	}
	return append(segs, ops[from:]), append(starts, init)
}

// readsAll returns the state of the key space after in, if in is an OK
// transaction that writes nothing and reads every one of keys: the keys
// as it read them, every other key missing (no operation of the group
// touches those).
func (m *model) readsAll(in *step, keys []string) (kv, bool) {
	o := in.op
	if in.final != nil || in.unknown != 0 || o.Outcome != OK || o.Kind != Transaction || !o.Txn.ReadOnly() {
		return nil, false
	}
	s := make(kv, len(m.names))
	read := map[string]bool{}
	for i, st := range o.Txn.ran() {
		r := o.Txn.Results[i]
		s[m.index[st.Key]] = entry{found: r.Found, value: r.Value, version: r.Version}
		read[st.Key] = true
	}
	for _, k := range keys {
		if !read[k] {
			return nil, false
		}
	}
	return s, true
}

// toPorcupine turns the history into porcupine operations over m. It
// returns them, the number of writes of unknown outcome, and how many of
// those were pinned.
func toPorcupine(ops []Op, m *model) (out []porcupine.Operation, unknowns, pinned int) {
	var end int64
	for _, o := range ops {
		end = max(end, o.Call, o.Return)
	}
	end++ // after every observed event: "never returned"
	seen := seenBy(ops)
	out = make([]porcupine.Operation, 0, len(ops))
	finals := map[string]int{} // key -> index in out of its final read
	for _, o := range ops {
		readOnly := o.Kind == Get || o.Kind == Transaction && o.Txn.ReadOnly()
		switch {
		case o.Replica != "":
			i, ok := finals[o.Key]
			if !ok {
				i = len(out)
				finals[o.Key] = i
				out = append(out, porcupine.Operation{ClientId: o.Client, Input: &step{op: o, keys: []int{m.index[o.Key]}}, Call: o.Call, Return: o.Return})
			}
			f := out[i].Input.(*step)
			f.final = append(f.final, o)
			out[i].Call, out[i].Return = min(out[i].Call, o.Call), max(out[i].Return, o.Return)
		case o.Outcome == Failed, o.Outcome == Unknown && readOnly:
			continue
		case o.Outcome == Unknown:
			unknowns++
			if ret, ok := seen.pin(o); ok {
				pinned++
				out = append(out, porcupine.Operation{ClientId: o.Client, Input: m.input(o), Call: o.Call, Return: ret})
				continue
			}
			early, late := m.input(o), m.input(o)
			early.unknown, late.unknown, late.late = unknowns, unknowns, true
			out = append(out, porcupine.Operation{ClientId: o.Client, Input: early, Call: o.Call, Return: o.Return},
				porcupine.Operation{ClientId: o.Client, Input: late, Call: o.Return + 1, Return: end})
		case o.Outcome == OK:
			out = append(out, porcupine.Operation{ClientId: o.Client, Input: m.input(o), Call: o.Call, Return: o.Return})
		default:
			panic(fmt.Sprintf("drill: operation with outcome %q", o.Outcome))
		}
	}
	return out, unknowns, pinned
}

// written is one value put to one key.
type written struct{ key, value string }

// sightings are, for each value put to a key, how many operations
// (of any outcome) put it, and the earliest return of an OK read of it.
type sightings struct {
	writers map[written]int
	firstOK map[written]int64
}

// seenBy collects the sightings of a history.
func seenBy(ops []Op) sightings {
	s := sightings{writers: map[written]int{}, firstOK: map[written]int64{}}
	saw := func(w written, ret int64) {
		if t, ok := s.firstOK[w]; !ok || ret < t {
			s.firstOK[w] = ret
		}
	}
	for _, o := range ops {
		for _, w := range puts(o) {
			s.writers[w]++
		}
		switch {
		case o.Outcome != OK:
		case o.Kind == Get && o.Found:
			saw(written{o.Key, o.Value}, o.Return)
		case o.Kind == Transaction:
			for i, st := range o.Txn.ran() {
				if r := o.Txn.Results[i]; st.Op == "get" && r.Found {
					saw(written{st.Key, r.Value}, o.Return)
				}
			}
		}
	}
	return s
}

// pin reports whether a write of unknown outcome is seen to have taken
// effect, and by when: a read returned a value that it alone put. Then
// it took effect before that read returned, and the checker treats it as
// an operation that ended there. This only narrows where porcupine looks:
// no linearization of the history places it anywhere else.
func (s sightings) pin(o Op) (int64, bool) {
	var ret int64
	found := false
	for _, w := range puts(o) {
		t, ok := s.firstOK[w]
		if ok && s.writers[w] == 1 && t > o.Call && (!found || t < ret) {
			ret, found = t, true
		}
	}
	return ret, found
}

// puts are the values o would put, in either branch.
func puts(o Op) []written {
	switch o.Kind {
	case Put:
		return []written{{o.Key, o.Value}}
	case Transaction:
		var ws []written
		for _, st := range append(slices.Clip(o.Txn.Success), o.Txn.Failure...) {
			if st.Op == "put" {
				ws = append(ws, written{st.Key, st.Value})
			}
		}
		return ws
	}
	return nil
}

// input is o as the model's step takes it. A transaction that does not
// decode cannot come from the drill or ReadHistory, which check them.
func (m *model) input(o Op) *step {
	if o.Kind != Transaction {
		return &step{op: o, keys: []int{m.index[o.Key]}}
	}
	t, err := o.Txn.protocol()
	if err != nil {
		panic(fmt.Sprintf("drill: %v: %v", o, err))
	}
	in := &step{op: o, txn: t}
	for _, k := range o.Txn.Keys() {
		in.keys = append(in.keys, m.index[k])
	}
	return in
}

// Visualize writes porcupine's HTML visualization of the groups found
// not linearizable, with the drill's events (faults) as annotations.
func (v Verdict) Visualize(path string) error {
	switch {
	case v.html != nil:
		return os.WriteFile(path, v.html, 0o644)
	case v.hasInfo:
		return porcupine.VisualizePath(v.model, v.info, path)
	case v.visualizeErr != nil:
		return v.visualizeErr
	}
	return fmt.Errorf("drill: no linearization info to visualize")
}
