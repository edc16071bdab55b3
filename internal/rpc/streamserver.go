package rpc

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server side of streams (see stream.go).
var (
	// serverStreamIdle closes a stream that carried no call this long;
	// clients give theirs up sooner (streamIdle).
	serverStreamIdle = 5 * time.Minute
	// frameTimeout bounds reading the rest of a frame once it began, and
	// writing a reply. A variable for tests.
	frameTimeout = 30 * time.Second
)

// AcceptStreams makes the server take streams (a participant's, for its
// coordinator's calls). Call it before serving.
func (s *Server) AcceptStreams() { s.streams = &streamSet{conns: map[net.Conn]bool{}} }

// CloseStreams closes every stream: at once those waiting for a call,
// the others once their call is answered; it returns when all are
// closed or ctx ends. http.Server.Shutdown does not wait for them (they
// are hijacked connections): call it after.
func (s *Server) CloseStreams(ctx context.Context) {
	if s.streams == nil {
		return
	}
	ss := s.streams
	ss.mu.Lock()
	ss.stopped = true
	for c, busy := range ss.conns {
		if !busy {
			c.Close()
		}
	}
	ss.mu.Unlock()
	done := make(chan struct{})
	go func() { ss.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// streamSet is the streams being served, each idle (waiting for a call)
// or busy.
type streamSet struct {
	mu      sync.Mutex
	conns   map[net.Conn]bool // conn -> busy
	stopped bool
	wg      sync.WaitGroup
}

// setBusy marks c busy or idle; false if the server is closing its
// streams and c is to be closed.
func (ss *streamSet) setBusy(c net.Conn, busy bool) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.stopped {
		return false
	}
	ss.conns[c] = busy
	return true
}

func (ss *streamSet) remove(c net.Conn) {
	ss.mu.Lock()
	delete(ss.conns, c)
	ss.mu.Unlock()
	c.Close()
	ss.wg.Done()
}

// serveStream upgrades r's connection to a stream, if its token admits
// it, and serves calls on it until it ends.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	if _, f := s.admit(Present(PresentedToken(r))); f != nil {
		s.refuse(w, r, f)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "rpc stream: "+err.Error(), http.StatusInternalServerError)
		return
	}
	ss := s.streams
	ss.mu.Lock()
	if ss.stopped {
		ss.mu.Unlock()
		conn.Close()
		return
	}
	ss.conns[conn] = true
	ss.wg.Add(1)
	ss.mu.Unlock()
	defer ss.remove(conn)
	_ = conn.SetDeadline(time.Now().Add(frameTimeout)) // the server's were for requests
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+StreamProtocol+"\r\n\r\n"); err != nil {
		return
	}
	bw := bufio.NewWriter(conn)
	var out []byte
	for {
		if !ss.setBusy(conn, false) {
			return
		}
		_ = conn.SetReadDeadline(time.Now().Add(serverStreamIdle))
		if _, err := brw.Reader.Peek(1); err != nil {
			return // closed, idle too long, or closed by CloseStreams
		}
		if !ss.setBusy(conn, true) {
			return
		}
		_ = conn.SetDeadline(time.Now().Add(frameTimeout))
		var closeAfter bool
		out, closeAfter = s.serveFrame(r, brw.Reader, out[:0])
		if out == nil {
			return // malformed, or cut off
		}
		if _, err := bw.Write(out); err != nil || bw.Flush() != nil || closeAfter {
			return
		}
	}
}

// serveFrame reads one call from br and serves it as a request like up
// (the upgrade) with the frame's headers and body; it returns the reply
// frame appended to out, and whether the stream must close after it
// (the handler said "Connection: close", or left a body too long to
// skip). nil: the stream is unusable.
func (s *Server) serveFrame(up *http.Request, br *bufio.Reader, out []byte) ([]byte, bool) {
	h, size, err := readFrameHeader(br)
	if err != nil {
		return nil, false
	}
	body := &io.LimitedReader{R: br, N: size}
	req := &http.Request{
		Method:        http.MethodPost,
		URL:           up.URL,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(body),
		ContentLength: size,
		Host:          up.Host,
		RemoteAddr:    up.RemoteAddr,
		RequestURI:    up.RequestURI,
		TLS:           up.TLS,
	}
	req = req.WithContext(up.Context())
	fw := &frameWriter{header: http.Header{}}
	s.ServeHTTP(fw, req)
	if fw.status == 0 {
		fw.status = http.StatusOK
	}
	closeAfter := fw.header.Get("Connection") == "close"
	// What the handler left of the body is skipped, to reach the next
	// frame; a refused request may leave more than is worth reading,
	// and then the stream ends after the reply.
	if body.N > maxDrain {
		closeAfter = true
	} else if _, err := io.CopyN(io.Discard, br, body.N); err != nil {
		return nil, false
	}
	return appendFrame(out, fw.status, fw.header, fw.body), closeAfter
}

// frameWriter is the http.ResponseWriter of a call on a stream.
type frameWriter struct {
	header http.Header
	status int
	body   []byte
}

func (w *frameWriter) Header() http.Header { return w.header }

func (w *frameWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *frameWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, b...)
	return len(b), nil
}
