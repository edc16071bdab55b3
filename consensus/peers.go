package consensus

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Peer is one coordinator of the group, as this one knows it.
type Peer struct {
	Name, URL string // its XML-RPC URL; raft messages go to /raft there
	ID        uint64
}

// peers are the coordinators this node can reach: those the flags name
// and those membership changes in the log added, less those removed. The
// loop changes them; the transport's handler reads them.
//
// heard are coordinators that streamed to this one and said who they are
// and where they serve, not (yet) known otherwise: one added to the group
// while this one was down, or before a restart made this one forget the
// change (it is in its log, but not known as committed). This one must
// answer them, or a leader it has never heard of could never win its
// vote nor bring its log up to date. They are not members for that.
type peers struct {
	mu      sync.RWMutex
	self    uint64
	byID    map[uint64]*peerState
	heard   map[uint64]*peerState
	removed map[string]bool // names taken out for good: never members again
}

type peerState struct {
	Peer
	s *sender // nil for this node
}

func newPeers(self uint64) *peers {
	return &peers{self: self, byID: map[uint64]*peerState{}, heard: map[uint64]*peerState{}, removed: map[string]bool{}}
}

// raftURL is where a coordinator served at u takes raft messages.
func raftURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	p.Path = "/raft"
	return p.String()
}

// set adds or updates a peer (starting its sender), unless its name was
// removed for good.
func (ps *peers) set(n *Node, p Peer) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.removed[p.Name] {
		return
	}
	// How this coordinator reaches a peer its flags name is the flags'
	// to say: a snapshot or a membership change carries the URL its
	// author used, which need not be the way from here (another network,
	// a proxy).
	if url, ok := n.cfg.Peers[p.Name]; ok {
		p.URL = url
	}
	if old := ps.byID[p.ID]; old != nil {
		if old.URL == p.URL {
			return
		}
		if old.s != nil {
			old.s.close()
		}
	}
	if h := ps.heard[p.ID]; h != nil {
		delete(ps.heard, p.ID)
		if h.URL == p.URL {
			ps.byID[p.ID] = h
			return
		}
		h.s.close()
	}
	st := &peerState{Peer: p}
	if p.ID != ps.self {
		st.s = newSender(n, p.ID, raftURL(p.URL))
		go st.s.run()
	}
	ps.byID[p.ID] = st
}

// hear: p streamed to this node, saying who it is and where it serves.
// A peer known otherwise keeps its URL; a removed one stays out.
func (ps *peers) hear(n *Node, p Peer) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.removed[p.Name] || p.ID == ps.self || ps.byID[p.ID] != nil {
		return
	}
	if old := ps.heard[p.ID]; old != nil {
		if old.URL == p.URL {
			return
		}
		old.s.close()
	}
	st := &peerState{Peer: p, s: newSender(n, p.ID, raftURL(p.URL))}
	go st.s.run()
	ps.heard[p.ID] = st
}

// remove takes a peer out for good.
func (ps *peers) remove(id uint64, name string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if h := ps.heard[id]; h != nil {
		h.s.close()
		delete(ps.heard, id)
	}
	if old := ps.byID[id]; old != nil {
		if old.s != nil {
			old.s.close()
		}
		name = old.Name
		delete(ps.byID, id)
	}
	if name != "" {
		ps.removed[name] = true
	}
}

func (ps *peers) sender(id uint64) *sender {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	if p := ps.byID[id]; p != nil {
		return p.s
	}
	if p := ps.heard[id]; p != nil {
		return p.s
	}
	return nil
}

func (ps *peers) known(id uint64) bool {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return ps.byID[id] != nil || ps.heard[id] != nil
}

func (ps *peers) name(id uint64) string {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	if p := ps.byID[id]; p != nil {
		return p.Name
	}
	return ""
}

func (ps *peers) byName(name string) (Peer, bool) {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	for _, p := range ps.byID {
		if p.Name == name {
			return p.Peer, true
		}
	}
	return Peer{}, false
}

func (ps *peers) isRemoved(name string) bool {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return ps.removed[name]
}

// list is every peer, by name.
func (ps *peers) list() []Peer {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	var out []Peer
	for _, p := range ps.byID {
		out = append(out, p.Peer)
	}
	slices.SortFunc(out, func(a, b Peer) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (ps *peers) closeAll() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.byID {
		if p.s != nil {
			p.s.close()
		}
	}
	for _, p := range ps.heard {
		p.s.close()
	}
}

// The peers travel in a snapshot's data, after its records, as lines
//
//	peer <id hex> <name> <url>
//	removed-peer <name>
//
// so that a coordinator restored from a snapshot can reach every member,
// including those added after the flags were written.
func (ps *peers) appendSnapshot(b []byte) []byte {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	for _, p := range ps.byID {
		b = fmt.Appendf(b, "peer %x %s %s\n", p.ID, p.Name, p.URL)
	}
	for name := range ps.removed {
		b = fmt.Appendf(b, "removed-peer %s\n", name)
	}
	return b
}

// confContext is what a membership change carries: "<name> <url>".
func confContext(name, url string) []byte { return []byte(name + " " + url) }

func parseConfContext(b []byte) (name, url string, ok bool) {
	name, url, ok = strings.Cut(string(b), " ")
	return name, url, ok && name != "" && url != ""
}

// checkPeerName: names are single words, as participants' are.
func checkPeerName(name string) error {
	if name == "" || strings.ContainsAny(name, " \t\n,=") {
		return fmt.Errorf("coordinator name %q: want a non-empty word without spaces, commas or '='", name)
	}
	return nil
}
