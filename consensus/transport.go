package consensus

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// Raft messages travel to a peer over a stream: an HTTP request that
// upgrades its connection (101 Switching Protocols, as a WebSocket
// does), after which the connection carries a run of messages, each a
// uvarint length and the message in raft's protobuf encoding. One
// goroutine per peer writes them in order, as many as are queued in one
// write. A stream costs one write per batch where a request each cost a
// round of HTTP on both sides, and an upgraded connection is the node's
// to close, not the HTTP server's to wait for when it shuts down. Raft
// copes with lost messages, so a full queue, a stream that breaks or a
// write that stalls drops them (and tells raft the peer is unreachable);
// the next batch opens a new stream. A plain POST of the same body is
// still taken, for one batch.

// maxRaftMessage bounds one message: a snapshot of the state is the
// largest.
const maxRaftMessage = 64 << 20

// sendTimeout bounds opening a stream and one write to it, so that a
// peer that stalls (paused, cut off) holds up its own queue only, and
// only this long.
const sendTimeout = 2 * time.Second

// streamIdle ends a stream that carried nothing this long (a leader
// sends heartbeats every few ticks; without a leader, a new stream
// opens with the next message).
const streamIdle = 30 * time.Second

// streamProtocol names the upgrade.
const streamProtocol = "twopc-raft/1"

// fromHeader says who sends, "<name> <url>": its name and where it
// serves (its own entry in its flags). A receiver that does not know it
// yet learns from it where to answer (peers.hear); every message on the
// stream must then come from that name.
const fromHeader = "Twopc-Raft-From"

type sender struct {
	n    *Node
	id   uint64
	url  string
	ch   chan raftpb.Message
	done chan struct{} // closed when the peer is removed or its URL changes
	once sync.Once
}

func newSender(n *Node, id uint64, url string) *sender {
	return &sender{n: n, id: id, url: url, ch: make(chan raftpb.Message, 4096), done: make(chan struct{})}
}

func (s *sender) close() { s.once.Do(func() { close(s.done) }) }

// sendAll queues msgs for their peers; the loop calls it.
//
// It leaves out the empty appends by which a leader tells a follower
// that replicates normally of each new commit index (etcd raft's
// bcastAppend after every commit): the follower learns it as well from
// the next append or heartbeat, and meanwhile needs it for nothing but
// applying to its copy of the state. Each one cost the follower a
// wake-up and an answer, as many as the appends that carry entries.
func (n *Node) sendAll(msgs []raftpb.Message) {
	var replicating map[uint64]bool
	for _, m := range msgs {
		if m.Type == raftpb.MsgApp && len(m.Entries) == 0 {
			if replicating == nil {
				replicating = map[uint64]bool{}
				n.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
					replicating[id] = pr.State == tracker.StateReplicate
				})
			}
			if replicating[m.To] {
				continue
			}
		}
		s := n.peers.sender(m.To)
		if s == nil {
			continue
		}
		select {
		case s.ch <- m:
		default:
			n.rn.ReportUnreachable(m.To)
		}
	}
}

// report queues f to run on the loop.
func (n *Node) report(f func(*raft.RawNode)) {
	n.mu.Lock()
	n.reports = append(n.reports, f)
	n.mu.Unlock()
	n.signal()
}

func (s *sender) run() {
	var st *stream
	defer func() {
		if st != nil {
			st.close()
		}
	}()
	var buf []byte
	for {
		var m raftpb.Message
		select {
		case <-s.n.stop:
			return
		case <-s.done:
			return
		case m = <-s.ch:
		}
		batch := []raftpb.Message{m}
	more:
		for len(batch) < 512 {
			select {
			case m := <-s.ch:
				batch = append(batch, m)
			default:
				break more
			}
		}
		buf = buf[:0]
		for i := range batch {
			b, err := batch[i].Marshal()
			if err != nil {
				continue
			}
			buf = binary.AppendUvarint(buf, uint64(len(b)))
			buf = append(buf, b...)
		}
		var err error
		if st == nil {
			st, err = s.open()
		}
		if err == nil {
			if err = st.write(buf); err != nil {
				st.close()
				st = nil
			}
		}
		for _, m := range batch {
			if m.Type == raftpb.MsgSnap {
				status := raft.SnapshotFinish
				if err != nil {
					status = raft.SnapshotFailure
				}
				s.n.report(func(rn *raft.RawNode) { rn.ReportSnapshot(s.id, status) })
			}
		}
		if err != nil {
			s.n.report(func(rn *raft.RawNode) { rn.ReportUnreachable(s.id) })
		}
	}
}

// stream is one upgraded connection to a peer, written to only.
type stream struct {
	conn io.WriteCloser
}

// open upgrades a request to the peer into a stream, within sendTimeout.
func (s *sender) open() (*stream, error) {
	ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", streamProtocol)
	if self := s.n.cfg.Peers[s.n.cfg.Name]; self != "" {
		req.Header.Set(fromHeader, s.n.cfg.Name+" "+self)
	}
	resp, err := s.n.cfg.Client.Do(req)
	if err != nil {
		return nil, err
	}
	conn, ok := resp.Body.(io.ReadWriteCloser)
	if resp.StatusCode != http.StatusSwitchingProtocols || !ok {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("raft peer %s: %s, not a stream", s.url, resp.Status)
	}
	return &stream{conn: conn}, nil
}

// write hands b to the stream, within sendTimeout.
func (st *stream) write(b []byte) error {
	t := time.AfterFunc(sendTimeout, func() { st.conn.Close() })
	defer t.Stop()
	_, err := st.conn.Write(b)
	return err
}

func (st *stream) close() { st.conn.Close() }

// Handler receives raft messages from the other coordinators: streams
// (see sender), or one batch in a plain POST. The caller mounts it and
// checks the peer token before it.
func (n *Node) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST raft messages here", http.StatusMethodNotAllowed)
			return
		}
		var from uint64 // any known peer
		if h := r.Header.Get(fromHeader); h != "" {
			name, url, _ := strings.Cut(h, " ")
			if checkPeerName(name) != nil || !isPeerURL(url) {
				http.Error(w, "raft messages: "+fromHeader+" is not \"<name> <url>\"", http.StatusBadRequest)
				return
			}
			from = NodeID(name)
			n.peers.hear(n, Peer{Name: name, URL: url, ID: from})
		}
		if r.Header.Get("Upgrade") != streamProtocol {
			if code, err := n.receive(bufio.NewReader(io.LimitReader(r.Body, maxRaftMessage+16)), nil, from); err != nil {
				http.Error(w, err.Error(), code)
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, "raft stream: "+err.Error(), http.StatusInternalServerError)
			return
		}
		if !n.streams.add(conn) { // stopped
			conn.Close()
			return
		}
		defer n.streams.remove(conn)
		conn.SetDeadline(time.Time{}) // the server's are for requests
		conn.SetWriteDeadline(time.Now().Add(sendTimeout))
		if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+streamProtocol+"\r\n\r\n"); err != nil {
			return
		}
		n.receive(brw.Reader, conn, from) // it ends when the stream does
	})
}

// receive reads messages from br until it ends, and hands them to the
// loop a batch at a time (what the sender wrote in one go). A stream
// that turns to garbage (a link that lost bytes) or carries a message
// from a stranger ends, with what came whole before it delivered. conn,
// if a stream, gets a read deadline of streamIdle for each message.
// from, if not 0, is the only sender allowed.
func (n *Node) receive(br *bufio.Reader, conn net.Conn, from uint64) (code int, err error) {
	var msgs []raftpb.Message
	defer func() { n.deliver(msgs) }()
	for {
		if conn != nil {
			conn.SetReadDeadline(time.Now().Add(streamIdle))
		}
		l, err := binary.ReadUvarint(br)
		if err == io.EOF {
			return 0, nil
		}
		if err != nil {
			return http.StatusBadRequest, fmt.Errorf("raft messages: %w", err)
		}
		if l > maxRaftMessage {
			return http.StatusBadRequest, errors.New("raft messages: message too large")
		}
		data := make([]byte, l)
		if _, err := io.ReadFull(br, data); err != nil {
			return http.StatusBadRequest, fmt.Errorf("raft messages: %w", err)
		}
		var m raftpb.Message
		if err := m.Unmarshal(data); err != nil {
			return http.StatusBadRequest, fmt.Errorf("raft messages: %w", err)
		}
		if !n.peers.known(m.From) || m.To != n.id || from != 0 && m.From != from {
			return http.StatusForbidden, errors.New("raft messages: not from a peer of this group, or not to this coordinator")
		}
		if m.Type == raftpb.MsgApp && len(m.Entries) == 0 {
			n.emptyAppends.Add(1)
		}
		msgs = append(msgs, m)
		if br.Buffered() == 0 {
			n.deliver(msgs)
			msgs = nil
		}
	}
}

// deliver hands msgs to the loop.
func (n *Node) deliver(msgs []raftpb.Message) {
	if len(msgs) == 0 {
		return
	}
	n.mu.Lock()
	n.inbox = append(n.inbox, msgs...)
	n.mu.Unlock()
	n.signal()
}

// streams are the connections peers stream to this node on; stopping
// the node closes them.
type streams struct {
	mu      sync.Mutex
	conns   map[net.Conn]bool
	stopped bool
}

func (s *streams) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	if s.conns == nil {
		s.conns = map[net.Conn]bool{}
	}
	s.conns[c] = true
	return true
}

func (s *streams) remove(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

func (s *streams) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	for c := range s.conns {
		c.Close()
	}
}

// raftLogger sends etcd raft's logging to slog: debug and info at debug
// level (elections are reported by the coordinator itself), warnings and
// errors as they are. Panics stay panics.
type raftLogger struct{ l *slog.Logger }

func (r raftLogger) Debug(v ...any)              { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Debugf(f string, v ...any)   { r.l.Debug(fmt.Sprintf(f, v...)) }
func (r raftLogger) Info(v ...any)               { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Infof(f string, v ...any)    { r.l.Debug(fmt.Sprintf(f, v...)) }
func (r raftLogger) Warning(v ...any)            { r.l.Warn(fmt.Sprint(v...)) }
func (r raftLogger) Warningf(f string, v ...any) { r.l.Warn(fmt.Sprintf(f, v...)) }
func (r raftLogger) Error(v ...any)              { r.l.Error(fmt.Sprint(v...)) }
func (r raftLogger) Errorf(f string, v ...any)   { r.l.Error(fmt.Sprintf(f, v...)) }
func (r raftLogger) Fatal(v ...any)              { r.l.Error(fmt.Sprint(v...)); panic(fmt.Sprint(v...)) }
func (r raftLogger) Fatalf(f string, v ...any)   { panic(fmt.Sprintf(f, v...)) }
func (r raftLogger) Panic(v ...any)              { panic(fmt.Sprint(v...)) }
func (r raftLogger) Panicf(f string, v ...any)   { panic(fmt.Sprintf(f, v...)) }
