package consensus

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// Raft messages go over a few long streams, not a request each: 300
// serial appends are 600 rounds of messages between the leader and its
// followers, and at least as many requests if each batch were a POST.
func TestMessagesStreamOverFewRequests(t *testing.T) {
	g := newGroup(t, "c1", "c2", "c3")
	r := g.serving("")
	log := g.node(r.name).Log(r.Term)
	before := g.requests.Load()
	for i := 1; i <= 300; i++ {
		must(t, log.Append(staged(fmt.Sprintf("%d.%d", r.Term, i))))
	}
	if n := g.requests.Load() - before; n > 20 {
		t.Fatalf("300 appends took %d raft requests; streams should carry them in a few", n)
	}
}

// frame is one message as a stream carries it.
func frame(t *testing.T, m raftpb.Message) []byte {
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.AppendUvarint(nil, uint64(len(b))), b...)
}

// A stream that turns to garbage (a link that dropped bytes mid-stream)
// ends with a fault, and what came before the garbage is delivered; a
// length beyond the bound is refused before anything is read for it; a
// message from a stranger ends the stream. A sender that says who it is
// (fromHeader) is heard, unless it was removed, and may send only as
// itself.
func TestStreamRefusesGarbage(t *testing.T) {
	g := newGroup(t, "c1", "c2", "c3")
	n := g.node("c1")
	n.peers.remove(NodeID("c8"), "c8")
	from := NodeID("c2")
	ok := frame(t, raftpb.Message{Type: raftpb.MsgHeartbeat, From: from, To: n.id, Term: 1})
	for _, c := range []struct {
		name      string
		header    string // fromHeader
		body      []byte
		status    int
		delivered int
	}{
		{"a newcomer that says who it is", "c9 http://127.0.0.1:9/RPC2", frame(t, raftpb.Message{Type: raftpb.MsgHeartbeat, From: NodeID("c9"), To: n.id}), http.StatusNoContent, 1},
		{"a removed one that says who it was", "c8 http://127.0.0.1:8/RPC2", frame(t, raftpb.Message{Type: raftpb.MsgHeartbeat, From: NodeID("c8"), To: n.id}), http.StatusForbidden, 0},
		{"a peer that sends as another", "c2 " + g.peers["c2"], frame(t, raftpb.Message{Type: raftpb.MsgHeartbeat, From: NodeID("c3"), To: n.id}), http.StatusForbidden, 0},
		{"who it is, garbled", "c2", ok, http.StatusBadRequest, 0},
		{"whole", "", append(append([]byte{}, ok...), ok...), http.StatusNoContent, 2},
		{"garbage after a message", "", append(append([]byte{}, ok...), 0x05, 0xff, 0xff, 0xff, 0xff, 0xff), http.StatusBadRequest, 1},
		{"too long", "", binary.AppendUvarint(nil, maxRaftMessage+1), http.StatusBadRequest, 0},
		{"stranger", "", frame(t, raftpb.Message{Type: raftpb.MsgHeartbeat, From: NodeID("c7"), To: n.id}), http.StatusForbidden, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A node of its own that does not run, so the inbox stays put.
			m := &Node{id: n.id, peers: n.peers, stop: make(chan struct{}), wake: make(chan struct{}, 1)}
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, "/raft", bytes.NewReader(c.body))
			if c.header != "" {
				r.Header.Set(fromHeader, c.header)
			}
			m.Handler().ServeHTTP(w, r)
			if w.Code != c.status || len(m.inbox) != c.delivered {
				t.Fatalf("status %d with %d delivered, want %d with %d", w.Code, len(m.inbox), c.status, c.delivered)
			}
		})
	}
}

// A follower that replicates normally gets no append without entries: the
// leader's word of each new commit index rides on the next append or
// heartbeat instead (sendAll).
func TestNoEmptyAppendsToFollowersThatKeepUp(t *testing.T) {
	g := newGroup(t, "c1", "c2", "c3")
	r := g.serving("")
	log := g.node(r.name).Log(r.Term)
	must(t, log.Append(staged(fmt.Sprintf("%d.0", r.Term)))) // every follower replicates
	var followers []*Node
	before := int64(0)
	for _, name := range []string{"c1", "c2", "c3"} {
		if name != r.name {
			followers = append(followers, g.node(name))
			before += g.node(name).emptyAppends.Load()
		}
	}
	for i := 1; i <= 50; i++ {
		must(t, log.Append(staged(fmt.Sprintf("%d.%d", r.Term, i))))
	}
	after := int64(0)
	for _, f := range followers {
		after += f.emptyAppends.Load()
	}
	// Each of the 50 commits was one empty append to each follower
	// before; a few may still go to a follower that fell back to probing.
	if after-before > 10 {
		t.Fatalf("followers got %d empty appends over 50 serial appends", after-before)
	}
}
