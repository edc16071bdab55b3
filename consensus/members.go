package consensus

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"strings"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Adding and removing coordinators: raft membership changes, one at a
// time, each carrying the coordinator's name and URL so that every member
// (and a snapshot) knows where to reach it.
//
// A removed name is never a member again. A coordinator whose disk was
// lost must come back under a new name: with its old one it could vote a
// second time in a term it already voted in, or count for a majority
// without the entries it acknowledged, and committed decisions could be
// lost.

// ErrMembership is a membership change refused; the message says why.
var ErrMembership = errors.New("consensus: membership change refused")

// AddPeer adds the coordinator name, served at url, to the group, and
// returns once the change is applied here (this coordinator must lead).
// Start the new coordinator with Config.Join: it gets the log from the
// leader. Until it has, it counts in the majority without helping it.
func (n *Node) AddPeer(ctx context.Context, name, url string) error {
	if err := checkPeerName(name); err != nil {
		return fmt.Errorf("%w: %v", ErrMembership, err)
	}
	if !isPeerURL(url) {
		// Added with a URL nobody serves at, it would count in every
		// majority without ever voting.
		return fmt.Errorf("%w: %q is not an http(s)://HOST:PORT/RPC2 URL", ErrMembership, url)
	}
	if n.peers.isRemoved(name) {
		return fmt.Errorf("%w: %s was removed; a coordinator never comes back under its old name (use a new one)", ErrMembership, name)
	}
	if p, ok := n.peers.byName(name); ok && n.isVoter(p.ID) {
		return fmt.Errorf("%w: %s is already a member, at %s", ErrMembership, name, p.URL)
	}
	return n.changeConf(ctx, raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: NodeID(name), Context: confContext(name, url)})
}

// RemovePeer takes the coordinator name out of the group for good. The
// leader does not remove itself: stop it first (another takes over) and
// remove it through the new leader.
func (n *Node) RemovePeer(ctx context.Context, name string) error {
	p, ok := n.peers.byName(name)
	if !ok || !n.isVoter(p.ID) {
		return fmt.Errorf("%w: %s is not a member", ErrMembership, name)
	}
	if p.ID == n.id {
		return fmt.Errorf("%w: %s leads; stop it, and remove it through the coordinator that leads next", ErrMembership, name)
	}
	return n.changeConf(ctx, raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: p.ID, Context: confContext(p.Name, p.URL)})
}

func (n *Node) isVoter(id uint64) bool {
	done := make(chan bool, 1)
	n.report(func(*raft.RawNode) {
		for _, v := range n.conf.Voters {
			if v == id {
				done <- true
				return
			}
		}
		done <- false
	})
	select {
	case v := <-done:
		return v
	case <-n.done:
		return false
	}
}

// changeConf proposes cc on the loop and waits until it is applied.
func (n *Node) changeConf(ctx context.Context, cc raftpb.ConfChange) error {
	result := make(chan error, 1)
	n.report(func(rn *raft.RawNode) {
		if !n.leader || !n.epochProposed {
			result <- ErrNotLeader
			return
		}
		// Readies are all handled here, so the change's index is the
		// storage's next one.
		last, _ := n.storage.LastIndex()
		if err := rn.ProposeConfChange(cc); err != nil {
			result <- err
			return
		}
		n.confWaits = append(n.confWaits, wait{index: last + 1, term: n.hard.Term, then: func(err error) { result <- err }})
	})
	select {
	case err := <-result:
		return err
	case <-ctx.Done():
		return fmt.Errorf("membership change not applied yet: %w", ctx.Err())
	case <-n.done:
		return ErrNotLeader
	}
}

// applyConfChange applies a committed membership change, here and to
// the peers this node reaches.
func (n *Node) applyConfChange(cc raftpb.ConfChange) {
	n.conf = *n.rn.ApplyConfChange(cc)
	// A coordinator added after the log was compacted gets a snapshot:
	// it must hold the configuration that has it, or it refuses it.
	n.confChanged = true
	name, url, ok := parseConfContext(cc.Context)
	switch cc.Type {
	case raftpb.ConfChangeAddNode:
		if ok {
			n.peers.set(n, Peer{Name: name, URL: url, ID: cc.NodeID})
			n.log.Info("coordinator added to the group", "coordinator", name, "url", url)
		}
	case raftpb.ConfChangeRemoveNode:
		n.peers.remove(cc.NodeID, name)
		n.log.Warn("coordinator removed from the group for good", "coordinator", name)
		if cc.NodeID == n.id {
			n.log.Error("this coordinator was removed from the group: it no longer takes part; stop it")
		}
	}
}

// settleConfWaits tells the membership changes proposed up to index
// whether they were applied (a change raft dropped because another was
// pending becomes an empty entry at its index).
func (n *Node) settleConfWaits(e raftpb.Entry) []func() {
	var notes []func()
	for len(n.confWaits) > 0 && n.confWaits[0].index <= e.Index {
		w := n.confWaits[0]
		n.confWaits = n.confWaits[1:]
		var err error
		switch {
		case w.index != e.Index || w.term != e.Term:
			err = ErrNotLeader
		case e.Type != raftpb.EntryConfChange:
			err = fmt.Errorf("%w: another membership change was under way; try again", ErrMembership)
		}
		notes = append(notes, func() { w.then(err) })
	}
	return notes
}

// isPeerURL: url is an http(s)://HOST... URL, one word.
func isPeerURL(url string) bool {
	u, err := neturl.Parse(url)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && !strings.ContainsAny(url, " \t\n")
}
