package httpserve

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"time"
)

// maxDrain is how much of a body its handler left unread is read past
// to keep the connection; net/http reads as far.
const maxDrain = 256 << 10

// serveConn serves c's requests until one is not for this server (then
// c goes to the http.Server), c ends, or the server shuts down.
func (s *Server) serveConn(c net.Conn) {
	keep := false // c was hijacked or handed off
	defer func() {
		if !keep {
			lingerClose(c)
		}
		s.release(c)
	}()
	lr := &limitReader{r: c}
	br := bufio.NewReaderSize(lr, 4<<10)
	bw := bufio.NewWriterSize(c, 4<<10)
	base := context.WithValue(context.WithValue(context.Background(),
		http.ServerContextKey, s.HTTP), http.LocalAddrContextKey, c.LocalAddr())
	var tlsState *tls.ConnectionState
	var remote string      // c's address, made once
	var prev *http.Request // the last call, whose values readHead reuses
	for first := true; ; first = false {
		if !s.setBusy(c, false) {
			return
		}
		// The first request has its header timeout from the start; later
		// ones wait for their first byte as long as an idle connection may.
		lr.remain = s.maxHeaderBytes() // the body's reads lift it
		if first {
			_ = c.SetReadDeadline(s.headerDeadline(time.Now()))
		} else {
			_ = c.SetReadDeadline(time.Now().Add(s.idleTimeout()))
		}
		if _, err := br.Peek(1); err != nil {
			return
		}
		if !s.setBusy(c, true) {
			return
		}
		t0 := time.Now()
		_ = c.SetReadDeadline(s.headerDeadline(t0))
		ours, err := s.isOurs(br)
		if err != nil {
			return
		}
		if !ours {
			keep = true
			lr.remain = 1<<63 - 1 // net/http bounds what it reads itself
			s.handOff(c, br)
			return
		}
		if tc, ok := c.(*tls.Conn); ok && tlsState == nil {
			st := tc.ConnectionState()
			tlsState = &st
		}
		if d := s.HTTP.WriteTimeout; d > 0 {
			_ = c.SetWriteDeadline(t0.Add(d))
		} else {
			_ = c.SetWriteDeadline(time.Time{})
		}
		req, quick := s.readHead(br, prev)
		if !quick {
			if req, err = http.ReadRequest(br); err != nil {
				s.badRequest(bw, lr.hit, err)
				return
			}
		}
		prev = req
		lr.remain = 1<<63 - 1
		// The body has ReadTimeout from the request's start, as in net/http;
		// the header's own deadline ends here.
		var bodyDeadline time.Time
		if d := s.HTTP.ReadTimeout; d > 0 {
			bodyDeadline = t0.Add(d)
		}
		_ = c.SetReadDeadline(bodyDeadline)
		if remote == "" {
			remote = c.RemoteAddr().String()
		}
		req.RemoteAddr, req.TLS = remote, tlsState
		switch s.serveRequest(base, c, req, br, bw) {
		case hijacked:
			keep = true
			return
		case closeConn:
			return
		}
	}
}

// isOurs says whether the request br starts with is one this server
// serves, reading no further than needed to tell.
func (s *Server) isOurs(br *bufio.Reader) (bool, error) {
	for n := 1; ; n++ {
		b, err := br.Peek(n)
		if err != nil {
			return false, err
		}
		prefix, whole := false, false
		for _, line := range s.lines {
			if bytes.HasPrefix(line, b) {
				prefix, whole = true, whole || len(b) == len(line)
			}
		}
		if !prefix || whole {
			return whole, nil
		}
	}
}

// after is what becomes of a connection once a request is served.
type after int

const (
	goOn      after = iota
	closeConn       // the reply said "Connection: close", or it failed
	hijacked        // the handler took the connection
)

// serveRequest runs the handler on req and completes its reply.
func (s *Server) serveRequest(base context.Context, c net.Conn, req *http.Request, br *bufio.Reader, bw *bufio.Writer) after {
	w := &responseWriter{srv: s, conn: c, br: br, bw: bw, closeAfter: req.Close}
	if !validHost(req.Host) { // HTTP/1.1 requires one (ReadRequest moved it here)
		w.refuse(http.StatusBadRequest, "missing or malformed Host header")
		return closeConn
	}
	body := &bodyReader{rc: req.Body, w: w}
	w.body = body
	switch e := req.Header.Get("Expect"); {
	case e == "":
	case http.CanonicalHeaderKey(e) == "100-Continue" && req.ContentLength != 0:
		body.expect = true
	default:
		w.refuse(http.StatusExpectationFailed, "unsupported Expect header")
		return closeConn
	}
	req.Body = body
	ctx, cancel := context.WithCancel(base)
	defer cancel()
	req = req.WithContext(ctx)
	ok := s.runHandler(w, req)
	if w.hijacked {
		return hijacked
	}
	if !ok {
		return closeConn
	}
	if !w.finish() || w.closeAfter {
		return closeConn
	}
	return goOn
}

// runHandler serves req as net/http would, logging a panic (the reply is
// then cut off); false if it panicked.
func (s *Server) runHandler(w *responseWriter, req *http.Request) (ok bool) {
	defer func() {
		if p := recover(); p != nil && p != http.ErrAbortHandler {
			buf := make([]byte, 64<<10)
			buf = buf[:runtime.Stack(buf, false)]
			s.logf("http: panic serving %s: %v\n%s", req.RemoteAddr, p, buf)
		}
	}()
	if s.Calls != nil {
		s.Calls.ServeHTTP(w, req)
	} else {
		s.HTTP.Handler.ServeHTTP(w, req)
	}
	return true
}

// badRequest answers a request ReadRequest refused, as net/http does.
func (s *Server) badRequest(bw *bufio.Writer, tooLarge bool, err error) {
	code, text := http.StatusBadRequest, "Bad Request"
	var ne net.Error
	switch {
	case tooLarge:
		code, text = http.StatusRequestHeaderFieldsTooLarge, "Request Header Fields Too Large"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) && ne.Timeout():
		return // the client left, or was too slow: nobody to answer
	}
	w := &responseWriter{bw: bw, header: http.Header{}}
	w.refuse(code, text)
}

func (s *Server) headerDeadline(t0 time.Time) time.Time {
	d := s.HTTP.ReadHeaderTimeout
	if d <= 0 {
		d = s.HTTP.ReadTimeout
	}
	if d <= 0 {
		return time.Time{}
	}
	return t0.Add(d)
}

func (s *Server) idleTimeout() time.Duration {
	if d := s.HTTP.IdleTimeout; d > 0 {
		return d
	}
	if d := s.HTTP.ReadTimeout; d > 0 {
		return d
	}
	return 2 * time.Minute
}

func (s *Server) maxHeaderBytes() int64 {
	n := int64(s.HTTP.MaxHeaderBytes)
	if n <= 0 {
		n = http.DefaultMaxHeaderBytes
	}
	return n + 4096 // net/http's slack for the request line
}

func (s *Server) logf(format string, args ...any) {
	if s.HTTP.ErrorLog != nil {
		s.HTTP.ErrorLog.Printf(format, args...)
	}
}

// lingerClose closes c after telling the client no more comes, and
// reading what it still sends until it closes too, for at most half a
// second (net/http waits as long): closing a socket with unread bytes
// resets the connection, and the client's system then drops the reply
// (a refusal, say) if the client has not read it yet.
func lingerClose(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, _ = io.Copy(io.Discard, c)
	}
	c.Close()
}

// limitReader reads from r until remain bytes were read, then reports
// hit: it bounds a request's header.
type limitReader struct {
	r      io.Reader
	remain int64
	hit    bool
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.remain <= 0 {
		l.hit = true
		return 0, io.EOF
	}
	if int64(len(p)) > l.remain {
		p = p[:l.remain]
	}
	n, err := l.r.Read(p)
	l.remain -= int64(n)
	return n, err
}

// bodyReader is a request's body as its handler sees it: it sends
// "100 Continue" first if the client waits for it, and notes the end.
type bodyReader struct {
	rc        io.ReadCloser
	w         *responseWriter
	expect    bool // the client waits for "100 Continue"
	continued bool
	eof       bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.expect && !b.continued && !b.w.started {
		b.continued = true
		_, _ = b.w.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		_ = b.w.bw.Flush()
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *bodyReader) Close() error { return nil }

// settle reads past what the handler left of the body, before its reply's
// head goes out, so that the head can say whether the connection ends:
// it does if the client waits for "100 Continue" that was never sent (it
// sends no body), or if more than maxDrain is left.
func (b *bodyReader) settle() (goesOn bool) {
	if b.expect && !b.continued {
		return false
	}
	if b.eof {
		return true
	}
	n, _ := io.CopyN(io.Discard, b, maxDrain+1)
	return n <= maxDrain && b.eof
}

// validHost: h is a Host header's value as net/http accepts it: not
// empty, and only the bytes a host, port or IPv6 literal may hold.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!$%&'()*+,-.:;=[]_~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
