package rpc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// StreamTransport is an http.RoundTripper that carries each POST over a
// stream (see stream.go) taken from a pool per URL, written and read in
// the caller's goroutine. A server that does not take streams (one of an
// older version) is called through fallback instead, and asked again
// after a minute. Other requests go to fallback.
//
// A call that fails on a stream is not sent again: as with net/http's
// Transport and a POST, the server may have acted on it. A stream left
// idle is checked before it is used (a server that restarted closed it),
// and closed after streamIdle.
type StreamTransport struct {
	tls      *tls.Config
	fallback http.RoundTripper

	mu    sync.Mutex
	idle  map[string][]*streamConn // by URL
	plain map[string]time.Time     // URLs that refused a stream, until when
	swept time.Time                // when put last looked at every URL's streams
}

type streamConn struct {
	c    net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	used time.Time // when it was last given back
	buf  []byte
}

// NewStreamTransport returns a transport that opens streams with
// tlsConfig for https URLs (nil: the system's roots) and sends what does
// not go on a stream through fallback.
func NewStreamTransport(tlsConfig *tls.Config, fallback http.RoundTripper) *StreamTransport {
	return &StreamTransport{tls: tlsConfig, fallback: fallback, idle: map[string][]*streamConn{}, plain: map[string]time.Time{}}
}

// Dialling and idling. streamIdle is well below the servers' idle limit
// for a stream (serverStreamIdle), so that a server never closes a stream
// the client may be about to use.
const (
	streamDialTimeout = 2 * time.Second
	streamIdle        = time.Minute
	plainFor          = time.Minute
)

// errNoStream: the server answered the upgrade with something else.
var errNoStream = errors.New("rpc: the server does not take streams")

func (t *StreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	key := req.URL.String()
	if req.Method != http.MethodPost || req.Header.Get("Upgrade") != "" || t.isPlain(key) {
		return t.fallback.RoundTrip(req)
	}
	// The body is read only once the stream is there: straight into its
	// frame, or by the fallback.
	ctx := req.Context()
	err := checkHeader(req.Header)
	if err == nil {
		err = ctx.Err()
	}
	var sc *streamConn
	if err == nil {
		sc, err = t.get(key, func() (*http.Request, error) { return req, nil })
	}
	if errors.Is(err, errNoStream) {
		t.setPlain(key)
		return t.fallback.RoundTrip(req)
	}
	if err != nil {
		closeBody(req) // as a RoundTripper must, even when it fails
		return nil, err
	}
	return t.exchange(ctx, key, sc, func() (*http.Response, bool, error) { return sc.call(req) })
}

// exchange makes one call on sc, and gives sc back if the stream goes
// on after it. A cancelled call unblocks at once; the stream is then
// closed, even if its reply came, since the cancellation may yet touch it.
func (t *StreamTransport) exchange(ctx context.Context, key string, sc *streamConn, call func() (*http.Response, bool, error)) (*http.Response, error) {
	stop := context.AfterFunc(ctx, func() { _ = sc.c.SetDeadline(time.Unix(1, 0)) })
	resp, goesOn, err := call()
	if !stop() || err != nil || !goesOn {
		sc.c.Close()
	} else if sc.c.SetDeadline(time.Time{}) == nil {
		t.put(key, sc)
	} else {
		sc.c.Close()
	}
	if err != nil {
		return nil, callError(ctx, err)
	}
	return resp, nil
}

// outgoing is a POST as this package's Client hands it to a transport of
// this package (poster), without an http.Request: net/http's Client,
// the request and a clone of it for each RoundTripper that adds to it
// cost about as much CPU as the stream's own write and read. A transport
// may set auth; header is shared, never changed.
type outgoing struct {
	ctx    context.Context
	url    string
	header http.Header
	auth   string // the Authorization header's value, if any (bearer)
	body   []byte // the caller's until the call returns
}

// poster is a transport that takes an outgoing call as it is. A wrapper
// (Traffic, bearer) posts only if what it wraps does: what ends in
// net/http's Transport goes through net/http's Client, as before. post
// is called only on a transport that posts.
type poster interface {
	post(o *outgoing) (*http.Response, error)
	posts() bool
}

// posts reports whether rt takes outgoing calls.
func posts(rt http.RoundTripper) bool {
	p, ok := rt.(poster)
	return ok && p.posts()
}

func (t *StreamTransport) posts() bool { return true }

// request makes o an http.Request, for what takes one: a dial, a server
// without streams. Its body is a copy, since a transport may read it
// after the call has returned.
func (o *outgoing) request() (*http.Request, error) {
	req, err := http.NewRequestWithContext(o.ctx, http.MethodPost, o.url, bytes.NewReader(bytes.Clone(o.body)))
	if err != nil {
		return nil, err
	}
	maps.Copy(req.Header, o.header)
	if o.auth != "" {
		req.Header.Set("Authorization", o.auth)
	}
	return req, nil
}

// roundTrip sends o through an http.RoundTripper.
func (o *outgoing) roundTrip(rt http.RoundTripper) (*http.Response, error) {
	req, err := o.request()
	if err != nil {
		return nil, err
	}
	return rt.RoundTrip(req)
}

func (t *StreamTransport) post(o *outgoing) (*http.Response, error) {
	_, authToo := o.header["Authorization"]
	_, upgrade := o.header["Upgrade"]
	if t.isPlain(o.url) || upgrade || o.auth != "" && authToo {
		return o.roundTrip(t) // the fallback, or a header to replace: RoundTrip's way
	}
	err := checkHeader(o.header)
	if err == nil {
		err = o.ctx.Err()
	}
	var sc *streamConn
	if err == nil {
		sc, err = t.get(o.url, o.request)
	}
	if errors.Is(err, errNoStream) {
		t.setPlain(o.url)
		return o.roundTrip(t.fallback)
	}
	if err != nil {
		return nil, err
	}
	return t.exchange(o.ctx, o.url, sc, func() (*http.Response, bool, error) { return sc.post(o) })
}

// callError is what a call that failed on a stream returns: its
// context's error if that ended it, as net/http's Transport does.
func callError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	var ne net.Error
	if _, ok := ctx.Deadline(); ok && errors.As(err, &ne) && ne.Timeout() {
		return context.DeadlineExceeded // the connection's deadline, a hair before the context's
	}
	return err
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// appendRequestFrame appends req's frame, with headers h and extra (as
// appendHeadWith's), to dst: its body is read (and closed) straight into
// it when its length is known.
func appendRequestFrame(dst []byte, h http.Header, extra []string, req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return appendHeadWith(dst, 0, h, extra, 0), nil
	}
	defer req.Body.Close()
	if n := req.ContentLength; n > 0 {
		dst = appendHeadWith(dst, 0, h, extra, n)
		start := len(dst)
		dst = slices.Grow(dst, int(n))[:start+int(n)]
		_, err := io.ReadFull(req.Body, dst[start:])
		return dst, err
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return dst, err
	}
	return append(appendHeadWith(dst, 0, h, extra, int64(len(body))), body...), nil
}

// call writes req's frame and reads its reply and whether the stream
// goes on after it, within req's context's deadline.
func (sc *streamConn) call(req *http.Request) (*http.Response, bool, error) {
	h := req.Header
	if _, ok := h[timeoutHeader]; ok {
		h = h.Clone() // the call's own deadline replaces it
		h.Del(timeoutHeader)
	}
	var timeout [2]string
	extra, err := sc.begin(req.Context(), timeout[:0])
	if err != nil {
		closeBody(req)
		return nil, false, err
	}
	buf, err := appendRequestFrame(sc.buf[:0], h, extra, req)
	return sc.finish(buf, err, req)
}

// post is call for an outgoing call.
func (sc *streamConn) post(o *outgoing) (*http.Response, bool, error) {
	var lines [4]string
	extra, err := sc.begin(o.ctx, lines[:0])
	if err != nil {
		return nil, false, err
	}
	if o.auth != "" {
		extra = append(extra, "Authorization", o.auth)
	}
	buf := appendHeadWith(sc.buf[:0], 0, o.header, extra, int64(len(o.body)))
	return sc.finish(append(buf, o.body...), nil, nil)
}

// begin sets the stream's deadline to ctx's, and appends to extra the
// header line that tells the server the call's timeout.
func (sc *streamConn) begin(ctx context.Context, extra []string) ([]string, error) {
	deadline, ok := ctx.Deadline()
	if err := sc.c.SetDeadline(deadline); err != nil {
		return nil, err
	}
	if ok {
		ms := (time.Until(deadline) + time.Millisecond - 1).Milliseconds() // rounded up
		extra = append(extra, timeoutHeader, strconv.FormatInt(max(1, ms), 10))
	}
	return extra, nil
}

// finish keeps buf for the next call, writes it, and reads the reply.
func (sc *streamConn) finish(buf []byte, err error, req *http.Request) (*http.Response, bool, error) {
	if cap(buf) <= maxKeptBuffer {
		sc.buf = buf
	}
	if err != nil {
		return nil, false, err
	}
	if _, err := sc.bw.Write(buf); err != nil {
		return nil, false, err
	}
	if err := sc.bw.Flush(); err != nil {
		return nil, false, err
	}
	status, err := readUvarint(sc.br)
	if err != nil {
		return nil, false, err
	}
	rh, size, err := readFrameHeader(sc.br)
	if err != nil {
		return nil, false, err
	}
	if status < 100 || status > 999 || size > maxResponseBytes {
		return nil, false, fmt.Errorf("%w: status %d, body of %d bytes", errFrame, status, size)
	}
	body := newReplyBody(int(size))
	if _, err := io.ReadFull(sc.br, body.buf); err != nil {
		body.Close()
		return nil, false, err
	}
	trailer, err := sc.br.ReadByte()
	if err != nil {
		body.Close()
		return nil, false, err
	}
	body.Reset(body.buf)
	return &http.Response{
		Status:        strconv.FormatUint(status, 10) + " " + http.StatusText(int(status)),
		StatusCode:    int(status),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rh,
		Body:          body,
		ContentLength: size,
		Request:       req,
	}, trailer == streamGoesOn, nil
}

// replyBody is a reply's body, read whole from the stream so that the
// stream can take the next call at once. Its buffer comes from
// replyBuffers and goes back on Close (the client decodes a reply into
// values of their own, then closes it): a coordinator reads about a
// kilobyte of replies per put.
type replyBody struct {
	bytes.Reader
	buf []byte
}

var replyBuffers = sync.Pool{New: func() any { return new(replyBody) }}

func newReplyBody(size int) *replyBody {
	b := replyBuffers.Get().(*replyBody)
	if cap(b.buf) < size {
		b.buf = make([]byte, size)
	}
	b.buf = b.buf[:size]
	return b
}

// Close gives the buffer back; reading after it reads nothing.
func (b *replyBody) Close() error {
	if b.buf == nil {
		return nil // closed already
	}
	b.Reset(nil)
	if cap(b.buf) <= maxKeptBuffer {
		replyBuffers.Put(&replyBody{buf: b.buf})
	}
	b.buf = nil
	return nil
}

// maxKeptBuffer: a stream keeps its frame buffer for the next call only
// up to this size, so that one large call does not pin its size.
const maxKeptBuffer = 64 << 10

// get returns an idle stream to key that is still open, or opens one
// with the request that request makes (its URL and headers: the token).
func (t *StreamTransport) get(key string, request func() (*http.Request, error)) (*streamConn, error) {
	for {
		t.mu.Lock()
		list := t.idle[key]
		if len(list) == 0 {
			t.mu.Unlock()
			req, err := request()
			if err != nil {
				return nil, err
			}
			return t.open(req)
		}
		sc := list[len(list)-1]
		t.idle[key] = list[:len(list)-1]
		t.mu.Unlock()
		if time.Since(sc.used) < streamIdle && sc.open() {
			return sc, nil
		}
		sc.c.Close()
	}
}

// open reports whether nothing came on the idle stream: a server that
// closed it, or wrote on it out of turn, made it useless. It peeks at
// the socket without waiting (a read with a deadline already past would
// not even look).
func (sc *streamConn) open() bool {
	if sc.br.Buffered() > 0 {
		return false
	}
	c := sc.c
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn() // a close_notify or a FIN shows there as well
	}
	sys, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sys.SyscallConn()
	if err != nil {
		return false
	}
	quiet := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		quiet = errors.Is(err, syscall.EAGAIN)
		return true
	})
	return err == nil && quiet
}

// put gives sc back. Each pool is a stack, so that a burst's extra
// streams sink to the bottom, where they are closed once idle too long:
// those of key now, those of every URL (a participant no longer called)
// every streamIdle.
func (t *StreamTransport) put(key string, sc *streamConn) {
	now := time.Now()
	sc.used = now
	t.mu.Lock()
	defer t.mu.Unlock()
	t.idle[key] = closeIdle(append(t.idle[key], sc), now)
	if now.Sub(t.swept) < streamIdle {
		return
	}
	t.swept = now
	for k, list := range t.idle {
		if list = closeIdle(list, now); len(list) == 0 {
			delete(t.idle, k)
		} else {
			t.idle[k] = list
		}
	}
}

// closeIdle closes the streams at the bottom of list idle past
// streamIdle and returns the rest.
func closeIdle(list []*streamConn, now time.Time) []*streamConn {
	for len(list) > 0 && now.Sub(list[0].used) >= streamIdle {
		list[0].c.Close()
		list = list[1:]
	}
	return list
}

func (t *StreamTransport) isPlain(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	until, ok := t.plain[key]
	if ok && time.Now().After(until) {
		delete(t.plain, key)
		return false
	}
	return ok
}

func (t *StreamTransport) setPlain(key string) {
	t.mu.Lock()
	t.plain[key] = time.Now().Add(plainFor)
	t.mu.Unlock()
}

// open dials req's host and upgrades the connection, presenting req's
// headers (its token).
func (t *StreamTransport) open(req *http.Request) (*streamConn, error) {
	c, err := Dial(req.Context(), req.URL, t.tls, streamDialTimeout)
	if err != nil {
		return nil, err
	}
	sc := &streamConn{c: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c)}
	if err := sc.upgrade(req); err != nil {
		c.Close()
		return nil, err
	}
	return sc, nil
}

func (sc *streamConn) upgrade(req *http.Request) error {
	deadline, _ := req.Context().Deadline()
	if dl := time.Now().Add(streamDialTimeout); deadline.IsZero() || dl.Before(deadline) {
		deadline = dl
	}
	if err := sc.c.SetDeadline(deadline); err != nil {
		return err
	}
	up, err := http.NewRequest(http.MethodPost, req.URL.String(), nil)
	if err != nil {
		return err
	}
	for name, values := range req.Header {
		if !isHopHeader(name) && name != "Content-Type" {
			up.Header[name] = values
		}
	}
	up.Header.Set("Connection", "Upgrade")
	up.Header.Set("Upgrade", StreamProtocol)
	if err := up.Write(sc.bw); err != nil {
		return err
	}
	if err := sc.bw.Flush(); err != nil {
		return err
	}
	resp, err := http.ReadResponse(sc.br, up)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != StreamProtocol {
		resp.Body.Close()
		return errNoStream
	}
	return nil
}

func readUvarint(br *bufio.Reader) (uint64, error) {
	v, err := binary.ReadUvarint(br)
	if errors.Is(err, io.EOF) {
		return 0, io.ErrUnexpectedEOF // the server closed the stream before answering
	}
	return v, err
}
