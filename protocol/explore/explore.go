package explore

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/twopc/twopc/protocol"
)

// Result is what an exploration found.
type Result struct {
	States    int      // distinct states reached
	Steps     int      // transitions taken
	Violation string   // the first broken promise, "" if none
	Trace     []string // the events that led to it
}

// Run explores every state reachable in cfg, depth first, and stops at
// the first violation.
func Run(cfg Config) Result {
	e := &explorer{seen: map[[16]byte]bool{}, settles: map[[16]byte]bool{}, limit: cfg.MaxStates}
	w := newWorld(&cfg)
	e.seen[w.key()] = true
	e.visit(w)
	return e.res
}

type explorer struct {
	seen    map[[16]byte]bool
	settles map[[16]byte]bool // states whose fair run was checked and settled
	limit   int
	path    []string
	res     Result
	found   bool
}

// event is one thing that can happen next.
type event struct {
	name string
	do   func(w *world) error
}

func (e *explorer) visit(w *world) {
	e.res.States++
	if e.limit > 0 && e.res.States >= e.limit {
		e.fail(violated("more than %d states: the configuration is too large to explore", e.limit))
		return
	}
	if err := e.settled(w); err != nil {
		e.fail(err)
		return
	}
	for _, ev := range w.events() {
		if e.found {
			return
		}
		next := w.clone()
		e.res.Steps++
		e.path = append(e.path, ev.name)
		err := ev.do(next)
		if err == nil {
			err = next.atomic()
		}
		if err != nil {
			e.fail(err)
			return
		}
		if k := next.key(); !e.seen[k] {
			e.seen[k] = true
			e.visit(next)
		}
		e.path = e.path[:len(e.path)-1]
	}
}

func (e *explorer) fail(err error) {
	var v *violation
	if !errors.As(err, &v) {
		panic(err) // a bug in the explorer itself
	}
	e.found = true
	e.res.Violation = v.msg
	e.res.Trace = slices.Clone(e.path)
}

// events lists everything that can happen in w.
func (w *world) events() []event {
	var evs []event
	for ci := range w.coords {
		at := ""
		if ci > 0 {
			at = fmt.Sprintf(" at the deposed leader of epoch %d", w.coords[ci].epoch)
		}
		for t := range w.tx {
			if w.tx[t].id == "" && w.coords[ci].keysFree(w.cfg.Txns[t]) {
				evs = append(evs, event{fmt.Sprintf("start t%d%s", t, at), func(w *world) error { return w.start(&w.coords[ci], t) }})
			}
		}
		for t := range w.tx {
			if w.coords[ci].retry&(1<<t) != 0 {
				evs = append(evs, event{fmt.Sprintf("retry timer of t%d%s", t, at), func(w *world) error {
					c := &w.coords[ci]
					c.retry &^= 1 << t
					return w.step(c, t, protocol.Event{Kind: protocol.EvRetry})
				}})
			}
		}
		if ci > 0 {
			evs = append(evs, event{fmt.Sprintf("the deposed leader of epoch %d learns it lost", w.coords[ci].epoch), func(w *world) error { return w.stepDown(ci) }})
		}
	}
	for i, m := range w.net {
		evs = append(evs, event{"deliver " + m.String(), func(w *world) error { return w.deliver(i) }})
		if w.failures < w.cfg.MaxFailures && !(m.question && !m.toCoord) {
			evs = append(evs, event{"lose " + m.String(), func(w *world) error { return w.lose(i) }})
		}
	}
	if l := w.lead(); l.durable < len(l.log) {
		evs = append(evs, event{"fsync", (*world).fsync})
	}
	for p := range w.parts {
		for t := range w.tx {
			bit := uint8(1) << t
			if w.parts[p].prepared&bit != 0 && w.parts[p].asking&bit == 0 && w.questions < w.cfg.MaxQuestions {
				// Participants ask any coordinator: a deposed leader
				// that has not learnt it yet answers too.
				for ci := range w.coords {
					evs = append(evs, event{fmt.Sprintf("p%d asks epoch %d about t%d", p+1, w.coords[ci].epoch, t), func(w *world) error {
						w.questions++
						return w.ask(p, t, w.coords[ci].epoch)
					}})
				}
			}
		}
	}
	if w.crashes < w.cfg.MaxCrashes {
		evs = append(evs, event{"crash the leader", (*world).crash})
	}
	if w.handovers < w.cfg.MaxHandovers {
		l := w.lead()
		for k := 0; k <= len(l.log)-l.durable; k++ {
			evs = append(evs, event{fmt.Sprintf("hand over, with %d of the leader's %d queued records", k, len(l.log)-l.durable), func(w *world) error { return w.handover(k) }})
		}
	}
	if w.rejoins < w.cfg.MaxRejoins && (len(w.lead().locks) == 0 || w.cfg.Bugs.NoDrain) {
		for p := range w.parts {
			if w.excluded()&(1<<p) != 0 {
				evs = append(evs, event{fmt.Sprintf("p%d catches up and rejoins", p+1), func(w *world) error { return w.rejoin(p) }})
			}
		}
	}
	if w.exclusions < w.cfg.MaxExclusions {
		in := w.writeSet(w.lead()) &^ w.lead().excluding
		for p := range w.parts {
			if in&(1<<p) != 0 && bits.OnesCount8(in) > 1 {
				evs = append(evs, event{fmt.Sprintf("exclude p%d", p+1), func(w *world) error { return w.exclude(p) }})
			}
		}
	}
	return evs
}

func (c *coord) keysFree(keys []string) bool {
	for _, k := range keys {
		if c.locks[k] != 0 {
			return false
		}
	}
	return true
}

// start has coordinator c begin transaction t, its keys locked there.
func (w *world) start(c *coord, t int) error {
	keys := slices.Sorted(slices.Values(w.cfg.Txns[t]))
	w.tx[t].id = fmt.Sprintf("%d.%d", c.epoch, t+1)
	w.tx[t].started = c.epoch
	for _, k := range keys {
		c.locks[k] |= 1 << t
	}
	w.tx[t].members = w.writeSet(c)
	var names []string
	for p := range w.parts {
		if w.tx[t].members&(1<<p) != 0 {
			names = append(names, w.partName(p))
		}
	}
	m, rd := protocol.Start(w.tx[t].id, names, keys)
	c.mach[t] = m
	return w.apply(c, t, rd)
}

// deliver hands the i'th message in flight to its addressee, and checks
// that no participant takes a call of a term lower than one it has
// seen.
func (w *world) deliver(i int) error {
	m := w.net[i]
	w.net = slices.Delete(w.net, i, i+1)
	if m.toCoord {
		return w.receive(m)
	}
	seen := w.parts[m.p].term
	reply, err := w.serve(m)
	if err == nil && !m.question && m.epoch < seen && !reply.failed {
		err = violated("fencing: p%d took %s of t%d from epoch %d after seeing epoch %d", m.p+1, m.kind, m.tx, m.epoch, seen)
	}
	if err == nil && reply != nil {
		w.net = append(w.net, *reply)
	}
	return err
}

// lose makes the i'th message's call fail as the coordinator sees it: a
// call times out (and may still arrive later, or never); an answer is
// lost (the call took effect). A question is simply gone (it will be
// asked again).
func (w *world) lose(i int) error {
	w.failures++
	m := w.net[i]
	switch {
	case m.question:
		w.net = slices.Delete(w.net, i, i+1)
		w.parts[m.p].asking &^= 1 << m.tx
	case m.toCoord:
		w.net[i] = msg{toCoord: true, p: m.p, tx: m.tx, kind: m.kind, epoch: m.epoch, failed: true}
	default:
		w.net = append(w.net, msg{toCoord: true, p: m.p, tx: m.tx, kind: m.kind, epoch: m.epoch, failed: true})
	}
	return nil
}

// ask has participant p ask the coordinator of term epoch about t, which
// it holds prepared.
func (w *world) ask(p, t, epoch int) error {
	w.parts[p].asking |= 1 << t
	w.net = append(w.net, msg{toCoord: true, question: true, p: p, tx: t, epoch: epoch})
	return nil
}

// writeSet is the participants a transaction starting at c goes to:
// those c knows are not excluded.
func (w *world) writeSet(c *coord) uint8 {
	return (uint8(1)<<len(w.parts) - 1) &^ c.excluded
}

// atomic checks that no transaction is applied at one participant and
// dropped, after a YES vote, at another, among those not excluded (an
// excluded one catches up from a snapshot before it serves again).
func (w *world) atomic() error {
	for t := range w.tx {
		bit := uint8(1) << t
		var applied, dropped []string
		for p := range w.parts {
			if w.excluded()&(1<<p) != 0 {
				continue
			}
			if (w.parts[p].applied|w.parts[p].copied)&bit != 0 {
				applied = append(applied, w.partName(p))
			}
			if w.parts[p].dropped&bit != 0 {
				dropped = append(dropped, w.partName(p))
			}
		}
		if len(applied) > 0 && len(dropped) > 0 {
			return violated("atomicity: %s applied at %v and aborted at %v", w.tx[t].id, applied, dropped)
		}
	}
	return nil
}

// settled runs w fairly, without failures, crashes or new transactions,
// until nothing more happens, and checks that nothing is left in doubt.
// The run is deterministic, so a state it passes through that was seen
// to settle before settles again: it stops there.
func (e *explorer) settled(w *world) error {
	w = w.clone()
	var path [][16]byte
	done := func() error {
		for _, k := range path {
			e.settles[k] = true
		}
		return nil
	}
	for range 1000 {
		k := w.key()
		if e.settles[k] {
			return done()
		}
		path = append(path, k)
		var err error
		switch l := w.lead(); {
		case len(w.coords) > 1:
			err = w.stepDown(1)
		case l.durable < len(l.log):
			err = w.fsync()
		case len(w.net) > 0:
			err = w.deliver(0)
		case l.retry != 0:
			t := bits.TrailingZeros8(l.retry)
			l.retry &^= 1 << t
			err = w.step(l, t, protocol.Event{Kind: protocol.EvRetry})
		case w.askDue() != nil:
			pt := w.askDue()
			err = w.ask(pt[0], pt[1], l.epoch)
		default:
			if err := w.finished(); err != nil {
				return err
			}
			return done()
		}
		if err == nil {
			err = w.atomic()
		}
		if err != nil {
			return violated("%s (in the fair run that follows)", err)
		}
	}
	return violated("never settles: still busy after 1000 fair steps")
}

func (w *world) askDue() []int {
	for p := range w.parts {
		for t := range w.tx {
			bit := uint8(1) << t
			if w.parts[p].prepared&bit != 0 && w.parts[p].asking&bit == 0 {
				return []int{p, t}
			}
		}
	}
	return nil
}

// finished checks a quiet world: nothing in doubt anywhere, and every
// transaction applied everywhere or nowhere, as its client was told.
func (w *world) finished() error {
	var problems []string
	l := w.lead()
	for t, tx := range w.tx {
		if m := l.mach[t]; m != nil {
			problems = append(problems, fmt.Sprintf("%s still at the coordinator: %s", tx.id, m))
		}
		if tx.id != "" && pendingIn(l.log, tx.id) {
			problems = append(problems, fmt.Sprintf("%s left unfinished in the log", tx.id))
		}
		bit := uint8(1) << t
		n, of := 0, 0
		for p := range w.parts {
			if w.excluded()&(1<<p) != 0 {
				continue // outside the guarantee (see atomic)
			}
			if tx.members&(1<<p) != 0 || w.parts[p].covered&bit != 0 {
				of++ // of its write set, or caught up after it started
			}
			if w.parts[p].prepared&bit != 0 {
				problems = append(problems, fmt.Sprintf("%s still prepared at p%d", tx.id, p+1))
			}
			if (w.parts[p].applied|w.parts[p].copied)&bit != 0 {
				n++
			}
		}
		switch {
		case n != 0 && n != of:
			problems = append(problems, fmt.Sprintf("%s applied at %d of the %d participants of its write set (or caught up since)", tx.id, n, of))
		case tx.reply == 1+int(protocol.ReplyCommitted) && n == 0:
			problems = append(problems, fmt.Sprintf("%s: the client heard success but it was applied nowhere", tx.id))
		case tx.reply == 1+int(protocol.ReplyAborted) && n != 0:
			problems = append(problems, fmt.Sprintf("%s: the client heard abort but it was applied", tx.id))
		}
	}
	if len(l.blocked) > 0 {
		problems = append(problems, "effects still waiting for the log")
	}
	if len(problems) > 0 {
		return violated("not settled: %s", strings.Join(problems, "; "))
	}
	return nil
}
