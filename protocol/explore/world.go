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
	MaxStates  int // give up (a violation) past this many states; 0: no limit
	Bugs       Bugs
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
}

// world is one state of the whole system.
type world struct {
	cfg       *Config
	epoch     int
	crashes   int
	failures  int
	questions int
	// excluded: participants whose exclusion is durable (the coordinator
	// learns of it then, and reads it back after a crash); excluding:
	// those whose exclude record is queued, not yet durable.
	excluded, excluding uint8
	exclusions          int
	rejoins             int

	log     []entry // queued records; log[:durable] survive a crash
	durable int
	blocked []blocked // effects waiting for records to be durable (Ready.Wait)

	tx    []txn
	parts []part
	net   []msg
	locks map[string]uint8 // key -> transactions holding it at the coordinator (bitmask)
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

// txn is a client transaction as the world sees it.
type txn struct {
	id      string // "" until started; "<epoch>.<n>"
	m       *protocol.Machine
	retry   bool  // a retry timer is set
	reply   int   // what the client heard: 0 nothing, else 1+protocol.ReplyKind
	members uint8 // its participants: the write set when it started
	commit  bool  // someone heard commit
	abort   bool  // someone heard abort
	started int   // epoch it started in
	waiting uint8 // participants whose question the coordinator holds
}

// part is a participant: what it holds durably and what it remembers.
type part struct {
	prepared, applied, tomb uint8 // by transaction index
	dropped                 uint8 // aborted while holding a YES vote
	asking                  uint8 // a question about the transaction is out
	lock                    map[string]int
	// After a catch-up: copied are the transactions whose writes came in
	// the copy; covered, those the copy stands for (every one started
	// before it); fence, those whose prepares it refuses.
	copied, covered, fence uint8
}

// msg is a call, an answer to a call, a question or an answer to one.
type msg struct {
	toCoord  bool
	p, tx    int
	kind     protocol.MsgKind
	epoch    int  // of the coordinator that made the call
	question bool // toCoord: a participant asks; !toCoord: the answer (commit)
	failed   bool // toCoord answer: the call failed
	vote     protocol.Vote
	held     bool
	commit   bool // answer to a question
}

func (m msg) String() string {
	switch {
	case m.question && m.toCoord:
		return fmt.Sprintf("p%d asks about t%d", m.p+1, m.tx)
	case m.question:
		return fmt.Sprintf("answer commit=%v to p%d about t%d", m.commit, m.p+1, m.tx)
	case m.toCoord && m.failed:
		return fmt.Sprintf("%s to p%d for t%d failed", m.kind, m.p+1, m.tx)
	case m.toCoord:
		return fmt.Sprintf("p%d answers %s for t%d (vote %d held %v)", m.p+1, m.kind, m.tx, m.vote.Kind, m.held)
	}
	return fmt.Sprintf("%s to p%d for t%d (epoch %d)", m.kind, m.p+1, m.tx, m.epoch)
}

func newWorld(cfg *Config) *world {
	w := &world{cfg: cfg, epoch: 1, locks: map[string]uint8{}}
	w.tx = make([]txn, len(cfg.Txns))
	w.parts = make([]part, cfg.Participants)
	for i := range w.parts {
		w.parts[i].lock = map[string]int{}
	}
	return w
}

func (w *world) clone() *world {
	c := *w
	c.log = slices.Clone(w.log)
	c.blocked = slices.Clone(w.blocked)
	c.tx = slices.Clone(w.tx)
	for i := range c.tx {
		if c.tx[i].m != nil {
			c.tx[i].m = c.tx[i].m.Clone()
		}
	}
	c.parts = slices.Clone(w.parts)
	for i := range c.parts {
		c.parts[i].lock = cloneMap(w.parts[i].lock)
	}
	c.net = slices.Clone(w.net)
	c.locks = cloneMap(w.locks)
	return &c
}

func cloneMap[V any](m map[string]V) map[string]V {
	c := make(map[string]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// key identifies the state up to a renaming of participants: two worlds
// with the same key behave the same from here on, and the explorer visits
// only one of them. Participants are interchangeable (same data, same
// code), so each one's part of the state (its own, the messages to and
// from it, what the coordinator knows of it) is encoded apart and the
// parts are sorted; the rest names no participant.
func (w *world) key() [16]byte {
	b := make([]byte, 0, 512)
	b = append(b, byte(w.epoch), byte(w.crashes), byte(w.failures), byte(w.questions), byte(w.exclusions), byte(w.rejoins), byte(w.durable))
	for _, e := range w.log {
		b = append(b, e.rec.Kind[0], byte(e.tx), flag(e.waited)|flag(e.lost)<<1)
		b = append(b, e.rec.TxID...)
	}
	b = append(b, '|')
	for _, bl := range w.blocked {
		b = append(b, byte(bl.tx), byte(bl.upto), byte(len(bl.eff.msgs)))
		if r := bl.eff.reply; r != nil {
			b = append(b, 'r', byte(r.Kind), byte(r.Cause))
		}
		b = append(b, 'a', byte(bl.eff.answer), '|')
	}
	for _, t := range w.tx {
		b = append(b, t.id...)
		b = append(b, 0, flag(t.retry)|flag(t.commit)<<1|flag(t.abort)<<2, byte(t.reply), byte(t.started), byte(bits.OnesCount8(t.members)))
		if t.m != nil {
			b = t.m.AppendKey(b)
		}
		b = append(b, '|')
	}
	for _, k := range sortedKeys(w.locks) {
		b = append(b, k...)
		b = append(b, w.locks[k])
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

// partKey encodes everything about participant i.
func (w *world) partKey(i int) []byte {
	p := w.parts[i]
	bit := uint8(1) << i
	b := []byte{p.prepared, p.applied, p.tomb, p.dropped, p.asking, flag(w.excluded&bit != 0) | flag(w.excluding&bit != 0)<<1,
		p.copied, p.covered, p.fence}
	for _, k := range sortedKeys(p.lock) {
		b = append(b, k...)
		b = append(b, byte(p.lock[k]))
	}
	for t := range w.tx {
		b = append(b, flag(w.tx[t].waiting&(1<<i) != 0), flag(w.tx[t].members&bit != 0))
		if m := w.tx[t].m; m != nil {
			b = m.AppendParticipantKey(b, w.partName(i))
		}
	}
	name := w.partName(i)
	for bi, bl := range w.blocked {
		for _, m := range bl.eff.msgs {
			if m.To == name {
				b = append(b, 'b', byte(bi), byte(m.Kind))
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

// durableHas reports whether the durable log holds a record of kind for
// txid.
func (w *world) durableHas(txid string, kind protocol.Kind) bool {
	for _, e := range w.log[:w.durable] {
		if e.rec.TxID == txid && e.rec.Kind == kind && !e.lost {
			return true
		}
	}
	return false
}

// durableRecords is what a crash leaves in the log file.
func (w *world) durableRecords() []protocol.Record {
	var recs []protocol.Record
	for _, e := range w.log[:w.durable] {
		if !e.lost {
			recs = append(recs, e.rec)
		}
	}
	return recs
}
