package consensus

import (
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twopc/twopc/protocol"
	"github.com/twopc/twopc/txlog"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// ErrNotLeader: this coordinator does not lead in the term a record was
// proposed for, or stopped leading before the record was committed. The
// record may still be committed by the next leader: its outcome is unknown.
var ErrNotLeader = errors.New("consensus: not the leader (any more)")

// Config describes one coordinator of a replicated group.
type Config struct {
	// Name is this coordinator's; Peers maps every coordinator's name
	// (this one's included) to its XML-RPC URL; raft messages go to
	// /raft there. Every coordinator of a new group must be given the
	// same Peers; coordinators added later are in the log (AddPeer).
	Name  string
	Peers map[string]string
	// Join: this coordinator is being added to a group that exists (see
	// AddPeer). With an empty log it waits for the leader to send it the
	// log, instead of founding a new group with Peers.
	Join bool
	// Path is the raft log file (created if missing).
	Path string
	// Client sends raft messages; it carries the peer token and TLS.
	Client *http.Client
	// Tick is raft's clock: heartbeats go every HeartbeatTicks ticks and a
	// follower that heard no leader for ElectionTicks to twice that
	// campaigns (defaults 20ms, 2 and 10: a dead leader is replaced in
	// about 0.2-0.4 s).
	Tick           time.Duration
	HeartbeatTicks int
	ElectionTicks  int
	// SnapshotEntries: after this many applied entries the log is
	// compacted to a snapshot of the state (default
	// DefaultSnapshotEntries).
	SnapshotEntries uint64
	// Linger is how long a lazy record (QueueLazy, AppendAsync) may wait
	// for another to share its round (default 1ms).
	Linger time.Duration
	// OnRole hears every change of role, in order, from a goroutine of
	// its own: it may take its time (stop a coordinator, start one).
	OnRole func(Role)
	Logger *slog.Logger
}

// Role is what a coordinator is now.
type Role struct {
	// Serving: this coordinator leads, and its epoch record (the
	// term) is committed, so State holds every record committed before
	// it: a new coordinator incarnation recovers from State and serves.
	Serving bool
	State   *txlog.State
	// Leader is the name of the coordinator that leads, "" if none is
	// known (an election is on); Term is raft's term.
	Leader string
	Term   uint64
}

// NodeID is the raft id of the coordinator called name.
func NodeID(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	if id := h.Sum64(); id != 0 {
		return id
	}
	return 1
}

// Node is one coordinator's member of the raft group: it elects, keeps
// the replicated log in its wal, and proposes records while it leads.
type Node struct {
	cfg     Config
	id      uint64
	peers   *peers
	log     *slog.Logger
	rn      *raft.RawNode
	storage *raft.MemoryStorage
	wal     *wal
	tracker *txlog.Tracker

	mu    sync.Mutex
	inbox []raftpb.Message
	props []proposal
	// propsUrgent: props hold one that is not lazy, or lingered enough.
	propsUrgent bool
	// flushAt: when flushTimer, if armed, makes the lazy props urgent.
	// One timer serves every lazy record: a record's flush is due Linger
	// (or asyncLinger) after it was queued, and one armed sooner does.
	flushAt     time.Time
	flushTimer  *time.Timer
	reports     []func(*raft.RawNode) // unreachable peers, snapshot results
	serving     uint64                // the term this node serves in; 0: none
	readsQueued []chan error          // ConfirmLeader calls for the next round
	wake        chan struct{}
	streams     streams // from the peers (transport.go)
	// emptyAppends counts appends received without entries (tests).
	emptyAppends atomic.Int64

	// Owned by the loop.
	hard          raftpb.HardState
	conf          raftpb.ConfState
	lead          uint64
	leader        bool
	epochProposed bool // this leader proposed its epoch record
	waits         []wait
	confWaits     []wait      // membership changes proposed, by index
	readRounds    []readRound // ConfirmLeader rounds out, oldest first
	readSeq       uint64
	confChanged   bool // since the last snapshot
	snapIndex     uint64
	applied       uint64

	notes chan []func() // callbacks, run in order off the loop
	roles chan Role
	stop  chan struct{}
	done  chan struct{}
}

type proposal struct {
	term uint64
	data []byte
	then func(error) // nil: nobody waits
	lazy bool
}

type wait struct {
	index, term uint64
	then        func(error)
}

// Start opens the raft log at cfg.Path and joins the group.
func Start(cfg Config) (*Node, error) {
	if cfg.Tick <= 0 {
		cfg.Tick = 20 * time.Millisecond
	}
	if cfg.HeartbeatTicks <= 0 {
		cfg.HeartbeatTicks = 2
	}
	if cfg.ElectionTicks <= 0 {
		cfg.ElectionTicks = 10
	}
	if cfg.Linger <= 0 {
		cfg.Linger = time.Millisecond
	}
	if cfg.SnapshotEntries == 0 {
		cfg.SnapshotEntries = DefaultSnapshotEntries
	}
	cfg.Peers = maps.Clone(cfg.Peers) // read by the senders; the caller's may change
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OnRole == nil {
		cfg.OnRole = func(Role) {}
	}
	if _, ok := cfg.Peers[cfg.Name]; !ok {
		return nil, fmt.Errorf("consensus: %q is not among the peers", cfg.Name)
	}
	n := &Node{
		cfg: cfg, id: NodeID(cfg.Name), peers: newPeers(NodeID(cfg.Name)), log: cfg.Logger,
		storage: raft.NewMemoryStorage(), tracker: txlog.NewTracker(),
		wake: make(chan struct{}, 1), notes: make(chan []func(), 1024), roles: make(chan Role, 256),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	var peers []raft.Peer
	seen := map[uint64]string{}
	for name, url := range cfg.Peers {
		if err := checkPeerName(name); err != nil {
			return nil, err
		}
		id := NodeID(name)
		if other, dup := seen[id]; dup {
			return nil, fmt.Errorf("consensus: names %q and %q have the same id", name, other)
		}
		seen[id] = name
		peers = append(peers, raft.Peer{ID: id})
		n.peers.set(n, Peer{Name: name, URL: url, ID: id})
	}
	w, ld, err := openWAL(cfg.Path)
	if err != nil {
		return nil, err
	}
	n.wal = w
	fresh := ld.snap.Metadata.Index == 0 && len(ld.entries) == 0 && raft.IsEmptyHardState(ld.hard)
	if err := n.restore(ld); err != nil {
		w.close()
		return nil, err
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID: n.id, ElectionTick: cfg.ElectionTicks, HeartbeatTick: cfg.HeartbeatTicks,
		Storage: n.storage, Applied: n.applied,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, MaxUncommittedEntriesSize: 64 << 20,
		CheckQuorum: true, PreVote: true, Logger: raftLogger{cfg.Logger},
	})
	if err != nil {
		w.close()
		return nil, err
	}
	if fresh && !cfg.Join {
		slices.SortFunc(peers, func(a, b raft.Peer) int { return cmp.Compare(a.ID, b.ID) })
		if err := rn.Bootstrap(peers); err != nil {
			w.close()
			return nil, err
		}
	}
	n.rn = rn
	go n.notify()
	go n.announce()
	go n.run()
	return n, nil
}

// restore loads the wal's snapshot, entries and hard state.
func (n *Node) restore(ld *loaded) error {
	if ld.snap.Metadata.Index > 0 {
		if err := n.storage.ApplySnapshot(ld.snap); err != nil {
			return err
		}
		if err := n.applySnapshot(ld.snap); err != nil {
			return err
		}
	}
	if err := n.storage.SetHardState(ld.hard); err != nil {
		return err
	}
	n.hard = ld.hard
	return n.storage.Append(ld.entries)
}

// applySnapshot makes the state machine that of snap.
func (n *Node) applySnapshot(snap raftpb.Snapshot) error {
	recs, ps, removed, err := parseSnapshotData(snap.Data)
	if err != nil {
		return fmt.Errorf("consensus: snapshot at %d: %w", snap.Metadata.Index, err)
	}
	t := txlog.NewTracker()
	for _, r := range recs {
		if err := t.Apply(r); err != nil {
			return fmt.Errorf("consensus: snapshot at %d: %w", snap.Metadata.Index, err)
		}
	}
	for _, p := range ps {
		n.peers.set(n, p)
	}
	for _, name := range removed {
		n.peers.remove(NodeID(name), name)
	}
	n.tracker, n.conf = t, snap.Metadata.ConfState
	n.snapIndex, n.applied = snap.Metadata.Index, snap.Metadata.Index
	n.confChanged = false // the snapshot holds the configuration
	return nil
}

// Stop leaves the group (the others elect without this node) and closes
// the log. Waits still open fail with ErrNotLeader.
func (n *Node) Stop() {
	select {
	case <-n.stop:
	default:
		close(n.stop)
	}
	<-n.done
	n.streams.stop()
}

// signal wakes the loop.
func (n *Node) signal() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Name of the coordinator with raft id id ("" if unknown).
func (n *Node) nameOf(id uint64) string { return n.peers.name(id) }

// URL of the named coordinator ("" if unknown).
func (n *Node) URL(name string) string {
	p, _ := n.peers.byName(name)
	return p.URL
}

// Peers are the coordinators of the group, as this one knows them.
func (n *Node) Peers() []Peer { return n.peers.list() }

// propose queues rec for the term it serves in; then hears when it is
// committed, or ErrNotLeader. A lazy record may wait up to Linger for
// one that is not to go with it.
func (n *Node) propose(term uint64, rec protocol.Record, lazy bool, then func(error)) {
	if err := txlog.CheckRecord(rec); err != nil {
		if then != nil {
			go then(err)
		}
		return
	}
	data := txlog.AppendRecord(nil, rec)
	n.mu.Lock()
	if n.serving != term {
		n.mu.Unlock()
		if then != nil {
			go then(ErrNotLeader)
		}
		return
	}
	n.props = append(n.props, proposal{term: term, data: data, then: then, lazy: lazy})
	switch {
	case !lazy:
		n.propsUrgent = true
	case then != nil:
		n.flushWithinLocked(n.cfg.Linger)
	default:
		// Nobody waits for it (an END): it rides with the next record
		// that is proposed, or goes after asyncLinger.
		n.flushWithinLocked(asyncLinger)
	}
	n.mu.Unlock()
	if !lazy {
		n.signal()
	}
}

// flushWithinLocked makes sure the lazy props are proposed within d.
func (n *Node) flushWithinLocked(d time.Duration) {
	at := time.Now().Add(d)
	if !n.flushAt.IsZero() && !at.Before(n.flushAt) {
		return // armed to fire sooner
	}
	n.flushAt = at
	if n.flushTimer == nil {
		n.flushTimer = time.AfterFunc(d, n.signalFlush)
	} else {
		n.flushTimer.Reset(d)
	}
}

// asyncLinger bounds how long a record nobody waits for stays queued:
// long enough that under any load it shares a round with others, short
// enough that the replicated state forgets finished transactions soon.
const asyncLinger = 20 * time.Millisecond

// ServingTerm is the term this node serves in (it leads, and its epoch
// record is applied), 0 if none. It is 0 before a wait hears that its
// record failed because this node stopped leading.
func (n *Node) ServingTerm() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.serving
}

// signalFlush wakes the loop to propose what lingers.
func (n *Node) signalFlush() {
	n.mu.Lock()
	n.flushAt = time.Time{}
	n.propsUrgent = len(n.props) > 0
	n.mu.Unlock()
	n.signal()
}
