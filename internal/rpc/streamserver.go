package rpc

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Server side of streams (see stream.go).

// serverStreamIdle closes a stream that carried no call this long;
// clients give theirs up sooner (streamIdle).
const serverStreamIdle = 5 * time.Minute

// frameTimeout bounds reading a frame once it began, and writing a
// reply. A variable for tests.
var frameTimeout = 30 * time.Second

// AcceptStreams makes the server take streams (a participant's, for its
// coordinator's calls). Call it before serving.
func (s *Server) AcceptStreams() { s.streams = &streamSet{conns: map[net.Conn]bool{}} }

// CloseStreams closes every stream: at once those waiting for a call,
// the others once their call is answered; it returns when all are
// closed or ctx ends. http.Server.Shutdown does not wait for them (they
// are hijacked connections): call it alongside.
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
		_ = conn.SetReadDeadline(time.Now().Add(frameTimeout))
		if !s.serveFrame(r, conn, brw.Reader, bw) {
			return
		}
	}
}

// serveFrame reads one call from br and serves it as a request like up
// (the upgrade) with the frame's headers and body, answering on bw. It
// returns false if the stream must end: a frame that does not follow
// the format, or a refused body too long to skip (then after the reply,
// whose trailer says so).
func (s *Server) serveFrame(up *http.Request, conn net.Conn, br *bufio.Reader, bw *bufio.Writer) bool {
	h, size, err := readFrameHeader(br)
	if err != nil {
		return false
	}
	ctx, cancel := frameContext(up.Context(), h)
	defer cancel()
	body := &io.LimitedReader{R: br, N: size}
	req := (&http.Request{
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
	}).WithContext(ctx)
	fw := &frameWriter{header: http.Header{}, bw: bw, conn: conn}
	s.ServeHTTP(fw, req)
	// What the handler left of the body is skipped, to reach the next
	// frame (a refused request leaves it, and says "Connection: close",
	// which a stream need not do); past maxDrain it is not worth reading.
	goesOn := body.N <= maxDrain
	if goesOn {
		_, err := io.CopyN(io.Discard, br, body.N)
		goesOn = err == nil
	}
	return fw.finish(goesOn) && goesOn
}

// frameContext is the context of a call whose frame has headers h: it
// ends when the call is answered, and an eighth after the caller stopped
// waiting (Twopc-Timeout), so that the caller meets its own deadline
// first, as with a plain request, whose context ends when its client,
// past its deadline, closes the connection.
func frameContext(parent context.Context, h http.Header) (context.Context, context.CancelFunc) {
	ms, err := strconv.ParseInt(h.Get(timeoutHeader), 10, 64)
	if err == nil && ms > 0 && ms < 1<<31 {
		d := time.Duration(ms) * time.Millisecond
		return context.WithTimeout(parent, d+d/8+time.Millisecond)
	}
	return context.WithCancel(parent)
}

// frameWriter is the http.ResponseWriter of a call on a stream. A reply
// with a Content-Length (every reply of the server's: writeXML, reply)
// goes straight onto the stream as the handler writes it, while its
// memory is still charged to the request; another is kept until the
// handler returns.
type frameWriter struct {
	header  http.Header
	bw      *bufio.Writer
	conn    net.Conn
	status  int
	length  int64 // declared by the handler; -1: none
	sent    int64 // of the body, once started
	started bool  // the frame's head is written
	over    bool  // the handler wrote more than it declared
	buf     []byte
}

func (w *frameWriter) Header() http.Header { return w.header }

func (w *frameWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status, w.length = code, -1
	if n, err := strconv.ParseInt(w.header.Get("Content-Length"), 10, 64); err == nil && n >= 0 {
		w.length = n
		w.start(n)
	}
}

func (w *frameWriter) start(size int64) {
	_ = w.conn.SetWriteDeadline(time.Now().Add(frameTimeout))
	_, _ = w.bw.Write(appendHead(nil, w.status, w.header, size)) // a failed write: the caller is gone
	w.started = true
}

func (w *frameWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.length < 0 {
		w.buf = append(w.buf, b...)
		return len(b), nil
	}
	if left := w.length - w.sent; int64(len(b)) > left {
		b, w.over = b[:left], true // finish ends the stream
	}
	n, err := w.bw.Write(b)
	w.sent += int64(n)
	return n, err
}

// finish completes the reply with its trailer and sends it; false if
// the stream cannot go on.
func (w *frameWriter) finish(goesOn bool) bool {
	w.WriteHeader(http.StatusOK)
	if !w.started {
		w.start(int64(len(w.buf)))
		_, _ = w.bw.Write(w.buf)
		w.sent = int64(len(w.buf))
		w.length = w.sent
	}
	if w.over || w.sent != w.length {
		return false // not the length declared: the frame cannot be ended
	}
	trailer := streamGoesOn
	if !goesOn {
		trailer = streamEnds
	}
	_ = w.bw.WriteByte(trailer)
	return w.bw.Flush() == nil && goesOn
}
