package explore

import (
	"crypto/sha256"
	"fmt"
	"math/bits"
	"slices"

	"github.com/twopc/twopc/protocol"
)

// Config is a configuration to explore.
type Config struct {
	Participants int        // at most 8
	Txns         [][]string // each transaction's keys (every key is written); at most 8
	MaxCrashes   int        // coordinator crashes per run
	MaxFailures  int        // lost calls or answers per run
	MaxQuestions int        // participants' questions per run (a fair run asks without limit)
	// MaxExclusions bounds the participants the coordinator excludes from
	// the write set per run, at any moment (as if it stopped answering:
	// the coordinator cannot tell a dead participant from a slow one),
	// always keeping one.
	MaxExclusions int
	// MaxRejoins bounds the excluded participants that catch up and
	// rejoin the write set per run (coordinator/catchup.go, as one step:
	// reset behind a fence, copy from a participant of the write set,
	// include), at any moment no transaction holds keys.
	MaxRejoins int
	// MaxHandovers bounds the leadership changes per run: at any moment
	// another coordinator is elected, with a log holding the committed
	// records and any prefix of the leader's records not yet committed,
	// while the deposed leader runs on until it learns it lost (see
	// handover).
	MaxHandovers int
	MaxStates    int // give up (a violation) past this many states; 0: no limit
	Bugs         Bugs
}

// Bugs are deliberate mistakes in the driver, to prove that the checks
// can fail.
type Bugs struct {
	// IgnoreWait: effects go out before the records the Ready said to
	// wait for are durable.
	IgnoreWait bool
	// LyingLog: the log reports STAGED durable without keeping it.
	LyingLog bool
	// SkipStaged: recovery finishes COMMIT records only, presuming every
	// STAGED aborted.
	SkipStaged bool
	// EarlyExclude: the machines hear of an exclusion when its record is
	// queued, before it is durable.
	EarlyExclude bool
	// ForgetExcluded: recovery ignores the log's exclusions.
	ForgetExcluded bool
	// NoFence: a rejoining participant accepts prepares sent before its
	// catch-up.
	NoFence bool
	// NoDrain: a participant rejoins while transactions still run
	// without it.
	NoDrain bool
	// NoTermCheck: participants take calls of any term, even one lower
	// than a term they have seen.
	NoTermCheck bool
	// RecoverSeenDurable: a new leader recovers from the records the old
	// one saw committed, ignoring those of its log that raft replicated
	// without the old leader learning it.
	RecoverSeenDurable bool
	// AbortOnLostLeadership: a deposed leader tells a client still
	// waiting for its outcome "aborted" when it learns it lost, instead
	// of "outcome unknown".
	AbortOnLostLeadership bool
	// PresumeLater: a deposed leader asked about a transaction of a later
	// epoch, which it does not know, presumes it aborted.
	PresumeLater bool
}

// world is one state of the whole system.
type world struct {
	cfg       *Config
	epochs    int // the highest epoch (term) any coordinator has had
	crashes   int
	failures  int
	questions int
	handovers int
	// exclusions and rejoins count the steps taken of each.
	exclusions int
	rejoins    int

	// coords are the coordinators acting: coords[0] leads; the others
	// were deposed and have not learnt it yet. The leader's committed
	// records are the cluster's: what every later leader's log holds.
	coords []coord

	tx    []txn
	parts []part
	net   []msg
}

// coord is one coordinator incarnation: the leader, or a deposed leader
// still running its machines.
type coord struct {
	epoch int // its term: the epoch of the ids it issues, carried by its calls
	// log is its copy of the decision log; log[:durable] is committed
	// (raft: held by a majority), the rest queued. A deposed leader's
	// queue never becomes durable.
	log     []entry
	durable int
	blocked []blocked // effects waiting for records to be durable (Ready.Wait)
	mach    []*protocol.Machine
	retry   uint8   // transactions whose retry timer is set
	waiting []uint8 // by transaction: participants whose question it holds
	// excluded: participants whose exclusion it knows durable (it learns
	// of it then, and reads it back on recovery); excluding: those whose
	// exclude record it queued, not yet durable.
	excluded, excluding uint8
	locks               map[string]uint8 // key -> transactions holding it (bitmask)
}

type entry struct {
	rec    protocol.Record
	tx     int
	waited bool // its durability is reported by the blocked Ready that waits for it
	lost   bool // Bugs.LyingLog: never written
}

type blocked struct {
	tx   int
	upto int // waits for log[:upto]
	recs []protocol.Kind
	eff  effects
}

type effects struct {
	msgs   []protocol.Message
	reply  *protocol.Reply
	answer protocol.Answer
}

// txn is a client transaction as the world sees it. Its machines are
// the coordinators' (each may run one).
type txn struct {
	id      string // "" until started; "<epoch>.<n>"
	reply   int    // what the client heard: 0 nothing, else 1+protocol.ReplyKind
	members uint8  // its participants: the write set when it started
	commit  bool   // someone heard commit
	abort   bool   // someone heard abort
	started int    // epoch it started in
}

// part is a participant: what it holds durably and what it remembers.
type part struct {
	prepared, applied, tomb uint8 // by transaction index
	dropped                 uint8 // aborted while holding a YES vote
	asking                  uint8 // a question about the transaction is out
	lock                    map[string]int
	// After a catch-up: copied are the transactions whose writes came in
	// the copy; covered, those the copy stands for (every one started
	// before it); fence, those whose prepares it refuses, with every one
	// of an epoch before fenceEpoch (their ids order before the fence).
	copied, covered, fence uint8
	fenceEpoch             int
	term                   int // the highest term it has seen in a call
}

// msg is a call, an answer to a call, a question or an answer to one.
type msg struct {
	toCoord bool
	p, tx   int
	kind    protocol.MsgKind
	// epoch is the term of the coordinator that made the call, or to
	// which a question goes.
	epoch    int
	question bool // toCoord: a participant asks; !toCoord: the answer (commit)
	failed   bool // toCoord answer: the call failed (lost, or refused)
	vote     protocol.Vote
	held     bool
	commit   bool // answer to a question
}

func (m msg) String() string {
	switch {
	case m.question && m.toCoord:
		return fmt.Sprintf("p%d asks epoch %d about t%d", m.p+1, m.epoch, m.tx)
	case m.question:
		return fmt.Sprintf("answer commit=%v to p%d about t%d", m.commit, m.p+1, m.tx)
	case m.toCoord && m.failed:
		return fmt.Sprintf("%s to p%d for t%d failed (epoch %d)", m.kind, m.p+1, m.tx, m.epoch)
	case m.toCoord:
		return fmt.Sprintf("p%d answers %s for t%d (vote %d held %v, epoch %d)", m.p+1, m.kind, m.tx, m.vote.Kind, m.held, m.epoch)
	}
	return fmt.Sprintf("%s to p%d for t%d (epoch %d)", m.kind, m.p+1, m.tx, m.epoch)
}

func newWorld(cfg *Config) *world {
	w := &world{cfg: cfg, epochs: 1}
	w.coords = []coord{newCoord(1, len(cfg.Txns))}
	w.tx = make([]txn, len(cfg.Txns))
	w.parts = make([]part, cfg.Participants)
	for i := range w.parts {
		w.parts[i].lock = map[string]int{}
	}
	return w
}

func newCoord(epoch, txns int) coord {
	return coord{epoch: epoch, mach: make([]*protocol.Machine, txns), waiting: make([]uint8, txns), locks: map[string]uint8{}}
}

func (w *world) clone() *world {
	c := *w
	c.coords = slices.Clone(w.coords)
	for i := range c.coords {
		c.coords[i] = w.coords[i].clone()
	}
	c.tx = slices.Clone(w.tx)
	c.parts = slices.Clone(w.parts)
	for i := range c.parts {
		c.parts[i].lock = cloneMap(w.parts[i].lock)
	}
	c.net = slices.Clone(w.net)
	return &c
}

func (c *coord) clone() coord {
	d := *c
	d.log = slices.Clone(c.log)
	d.blocked = slices.Clone(c.blocked)
	d.mach = slices.Clone(c.mach)
	for t, m := range d.mach {
		if m != nil {
			d.mach[t] = m.Clone()
		}
	}
	d.waiting = slices.Clone(c.waiting)
	d.locks = cloneMap(c.locks)
	return d
}

func cloneMap[V any](m map[string]V) map[string]V {
	c := make(map[string]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// lead is the leader.
func (w *world) lead() *coord { return &w.coords[0] }

// coordOf returns the coordinator of term epoch still acting, or nil.
func (w *world) coordOf(epoch int) *coord {
	for i := range w.coords {
		if w.coords[i].epoch == epoch {
			return &w.coords[i]
		}
	}
	return nil
}

// excluded are the participants whose exclusion is committed: the
// leader's view, which every later leader's log holds.
func (w *world) excluded() uint8 { return w.lead().excluded }

// key identifies the state up to a renaming of participants: two worlds
// with the same key behave the same from here on, and the explorer visits
// only one of them. Participants are interchangeable (same data, same
// code), so each one's part of the state (its own, the messages to and
// from it, what the coordinators know of it) is encoded apart and the
// parts are sorted; the rest names no participant.
func (w *world) key() [16]byte {
	b := make([]byte, 0, 512)
	b = append(b, byte(w.epochs), byte(w.crashes), byte(w.failures), byte(w.questions), byte(w.exclusions), byte(w.rejoins), byte(w.handovers))
	for _, t := range w.tx {
		b = append(b, t.id...)
		b = append(b, 0, flag(t.commit)|flag(t.abort)<<1, byte(t.reply), byte(t.started), byte(bits.OnesCount8(t.members)), '|')
	}
	for i := range w.coords {
		b = w.coords[i].appendKey(b)
	}
	parts := make([]string, len(w.parts))
	for i := range w.parts {
		parts[i] = string(w.partKey(i))
	}
	slices.Sort(parts)
	for _, p := range parts {
		b = append(b, '#')
		b = append(b, p...)
	}
	sum := sha256.Sum256(b)
	var k [16]byte
	copy(k[:], sum[:])
	return k
}

// appendKey encodes what coordinator c holds but for what it knows of
// each participant (see partKey).
func (c *coord) appendKey(b []byte) []byte {
	b = append(b, 'C', byte(c.epoch), byte(c.durable), c.retry)
	for _, e := range c.log {
		b = append(b, e.rec.Kind[0], byte(e.tx), flag(e.waited)|flag(e.lost)<<1)
		b = append(b, e.rec.TxID...)
	}
	b = append(b, '|')
	for _, bl := range c.blocked {
		b = append(b, byte(bl.tx), byte(bl.upto), byte(len(bl.eff.msgs)))
		if r := bl.eff.reply; r != nil {
			b = append(b, 'r', byte(r.Kind), byte(r.Cause))
		}
		b = append(b, 'a', byte(bl.eff.answer), '|')
	}
	for _, m := range c.mach {
		if m != nil {
			b = m.AppendKey(b)
		}
		b = append(b, '|')
	}
	for _, k := range sortedKeys(c.locks) {
		b = append(b, k...)
		b = append(b, c.locks[k])
	}
	return b
}

// partKey encodes everything about participant i.
func (w *world) partKey(i int) []byte {
	p := w.parts[i]
	bit := uint8(1) << i
	b := []byte{p.prepared, p.applied, p.tomb, p.dropped, p.asking, p.copied, p.covered, p.fence, byte(p.fenceEpoch), byte(p.term)}
	for _, k := range sortedKeys(p.lock) {
		b = append(b, k...)
		b = append(b, byte(p.lock[k]))
	}
	for t := range w.tx {
		b = append(b, flag(w.tx[t].members&bit != 0))
	}
	name := w.partName(i)
	for ci := range w.coords {
		c := &w.coords[ci]
		b = append(b, 'C', flag(c.excluded&bit != 0)|flag(c.excluding&bit != 0)<<1)
		for t, m := range c.mach {
			b = append(b, flag(c.waiting[t]&bit != 0))
			if m != nil {
				b = m.AppendParticipantKey(b, name)
			}
		}
		for bi, bl := range c.blocked {
			for _, m := range bl.eff.msgs {
				if m.To == name {
					b = append(b, 'b', byte(bi), byte(m.Kind))
				}
			}
		}
	}
	var net []string
	for _, m := range w.net {
		if m.p == i {
			net = append(net, string(m.appendKey(nil)))
		}
	}
	slices.Sort(net)
	for _, m := range net {
		b = append(b, '|')
		b = append(b, m...)
	}
	return b
}

func flag(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// appendKey encodes m but for its participant (see partKey).
func (m msg) appendKey(b []byte) []byte {
	return append(b, flag(m.toCoord)|flag(m.question)<<1|flag(m.failed)<<2|flag(m.held)<<3|flag(m.commit)<<4,
		byte(m.tx), byte(m.kind), byte(m.epoch), byte(m.vote.Kind), flag(m.vote.Conflict), flag(m.vote.Succeeded))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (w *world) partName(p int) string { return fmt.Sprintf("p%d", p+1) }

func (w *world) partIndex(name string) int {
	var p int
	fmt.Sscanf(name, "p%d", &p)
	return p - 1
}

func (w *world) names() []string {
	ns := make([]string, w.cfg.Participants)
	for i := range ns {
		ns[i] = w.partName(i)
	}
	return ns
}

// durableHas reports whether the committed log (the leader's: every
// later leader's holds it) has a record of kind for txid.
func (w *world) durableHas(txid string, kind protocol.Kind) bool {
	l := w.lead()
	for _, e := range l.log[:l.durable] {
		if e.rec.TxID == txid && e.rec.Kind == kind && !e.lost {
			return true
		}
	}
	return false
}

// records is what recs holds once written: a crash keeps the records a
// lying log never wrote out of it.
func records(recs []entry) []protocol.Record {
	var out []protocol.Record
	for _, e := range recs {
		if !e.lost {
			out = append(out, e.rec)
		}
	}
	return out
}
