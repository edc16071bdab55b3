package consensus

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Raft messages travel as HTTP POSTs to a peer's raft URL, the body a run
// of messages, each a uvarint length and the message in raft's protobuf
// encoding. One goroutine per peer sends them in order, as many as are
// queued in one request. Raft copes with lost messages, so a full queue
// or a failed request drops them (and tells raft the peer is unreachable).

// maxRaftBody bounds one request: a snapshot of the state is the largest.
const maxRaftBody = 64 << 20

// sendTimeout bounds one request, so that a peer that stalls (paused, cut
// off) holds up its own queue only, and only this long.
const sendTimeout = 2 * time.Second

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
func (n *Node) sendAll(msgs []raftpb.Message) {
	for _, m := range msgs {
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
		err := s.post(buf)
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

func (s *sender) post(body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-raft")
	resp, err := s.n.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("raft peer %s: %s", s.url, resp.Status)
	}
	return nil
}

// Handler receives raft messages from the other coordinators. The caller
// mounts it and checks the peer token before it.
func (n *Node) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST raft messages here", http.StatusMethodNotAllowed)
			return
		}
		data, err := io.ReadAll(io.LimitReader(r.Body, maxRaftBody+1))
		if err != nil || len(data) > maxRaftBody {
			http.Error(w, "raft messages: body unreadable or too large", http.StatusBadRequest)
			return
		}
		var msgs []raftpb.Message
		for len(data) > 0 {
			l, k := binary.Uvarint(data)
			if k <= 0 || uint64(len(data)-k) < l {
				http.Error(w, "raft messages: malformed body", http.StatusBadRequest)
				return
			}
			var m raftpb.Message
			if err := m.Unmarshal(data[k : k+int(l)]); err != nil {
				http.Error(w, "raft messages: "+err.Error(), http.StatusBadRequest)
				return
			}
			if !n.peers.known(m.From) || m.To != n.id {
				http.Error(w, "raft messages: not from a peer of this group, or not to this coordinator", http.StatusForbidden)
				return
			}
			msgs = append(msgs, m)
			data = data[k+int(l):]
		}
		n.mu.Lock()
		n.inbox = append(n.inbox, msgs...)
		n.mu.Unlock()
		n.signal()
		w.WriteHeader(http.StatusNoContent)
	})
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
