package rpc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const streamToken = "stream-test-token"

// appendFrame appends a request frame to dst, as a client would.
func appendFrame(dst []byte, h http.Header, body []byte) []byte {
	return append(appendHead(dst, 0, h, int64(len(body))), body...)
}

// streamServer serves the test methods and takes streams from callers
// with streamToken; conns counts the connections it was opened.
func streamServer(t testing.TB, accept bool, extra ...Method) (s *Server, ts *httptest.Server, conns *atomic.Int32) {
	t.Helper()
	s = NewServer(Limits{}, nil)
	for _, m := range append(testMethods(), extra...) {
		s.Register(m)
	}
	s.SetCredentials(Credential{Secret: NewSecret(streamToken)})
	if accept {
		s.AcceptStreams()
	}
	ts, conns = countingServer(t, s)
	t.Cleanup(func() { s.CloseStreams(context.Background()) }) // before ts closes: cleanups run last first
	return s, ts, conns
}

// countingTransport counts what falls back to plain HTTP.
type countingTransport struct {
	n    atomic.Int32
	base http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

// streamClient calls url over streams; the transport, and what it sent
// over plain HTTP instead, for the tests to look at.
func streamClient(url, token string) (*Client, *StreamTransport, *countingTransport) {
	fb := &countingTransport{base: defaultTransport()}
	tr := NewStreamTransport(nil, fb)
	return NewClient(url+"/RPC2", WithToken(&http.Client{Transport: tr}, token)).OwnEncoder(), tr, fb
}

// gated is a method whose calls each say they started, then wait for
// release to be closed.
func gated(name string, calls int) (m Method, started chan struct{}, release chan struct{}) {
	started, release = make(chan struct{}, calls), make(chan struct{})
	return Method{Name: name, Handler: func(context.Context, []any) (any, error) {
		started <- struct{}{}
		<-release
		return "done", nil
	}}, started, release
}

// Every value and fault goes over a stream as over HTTP, and every call
// of a serial run rides the one connection.
func TestStreamRoundTrip(t *testing.T) {
	_, ts, conns := streamServer(t, true)
	c, _, fallback := streamClient(ts.URL, streamToken)
	clientRoundTrip(t, c)
	_, err := c.Call(t.Context(), "fail", 7)
	var f *Fault
	if !errors.As(err, &f) || f.Code != 7 {
		t.Fatalf("fault over a stream: %v, want fault 7", err)
	}
	if n := fallback.n.Load(); n != 0 {
		t.Fatalf("%d calls went over plain HTTP", n)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("the server saw %d connections, want the one stream", n)
	}
}

// A server that does not take streams (an older participant) is called
// over plain HTTP, and asked to upgrade once, not at every call.
func TestStreamFallsBackToPlainHTTP(t *testing.T) {
	_, ts, _ := streamServer(t, false)
	c, _, fallback := streamClient(ts.URL, streamToken)
	for i := range 5 {
		if got, err := c.Call(t.Context(), "add", i, 1); err != nil || got != int64(i+1) {
			t.Fatalf("call %d: %v, %v", i, got, err)
		}
	}
	if n := fallback.n.Load(); n != 5 {
		t.Fatalf("%d calls over plain HTTP, want 5", n)
	}
}

// A caller without the token gets no stream, only the fault; and every
// call on a stream is admitted on its own headers, not on the upgrade's.
func TestStreamAdmitsEachCall(t *testing.T) {
	s, ts, _ := streamServer(t, true)
	c, _, _ := streamClient(ts.URL, "wrong")
	_, err := c.Call(t.Context(), "add", 1, 2)
	var f *Fault
	if !errors.As(err, &f) || f.Code != NotAuthorised {
		t.Fatalf("call with a wrong token: %v, want fault %d", err, NotAuthorised)
	}
	s.streams.mu.Lock()
	n := len(s.streams.conns)
	s.streams.mu.Unlock()
	if n != 0 {
		t.Fatalf("a caller with a wrong token holds %d streams", n)
	}

	st := rawStream(t, ts, streamToken)
	h := http.Header{"Content-Type": {"text/xml"}} // no token
	status, _, body := st.call(t, h, callXML("<param><value><int>1</int></value></param><param><value><int>2</int></value></param>"))
	if status != http.StatusOK || !strings.Contains(body, "<name>faultCode</name><value><int>5</int>") {
		t.Fatalf("a frame without the token on an admitted stream: %d %s", status, body)
	}
}

// A stream the server closed while it was idle (a participant that
// restarted) is found closed before the next call, which goes on a new
// one instead of failing.
func TestStreamReopensAfterServerClosedIt(t *testing.T) {
	s, ts, conns := streamServer(t, true)
	c, _, _ := streamClient(ts.URL, streamToken)
	if _, err := c.Call(t.Context(), "add", 1, 2); err != nil {
		t.Fatal(err)
	}
	s.CloseStreams(t.Context())
	s.AcceptStreams() // serving again, as a restarted server would (no call is in flight)
	if got, err := c.Call(t.Context(), "add", 2, 2); err != nil || got != int64(4) {
		t.Fatalf("call after the server closed the stream: %v, %v", got, err)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("the server saw %d connections, want 2", n)
	}
}

// A frame whose headers exceed the bound ends the stream before they
// are read; a body over the server's limit is refused with its fault,
// and a body too long to skip ends the stream after the reply.
func TestStreamFrameLimits(t *testing.T) {
	defer func(d time.Duration) { frameTimeout = d }(frameTimeout)
	frameTimeout = time.Hour // a server that waited for the frame would hang the test
	_, ts, _ := streamServer(t, true)
	st := rawStream(t, ts, streamToken)
	st.write(t, []byte{0xff, 0xff, 0xff, 0x7f}) // headers of 256 MiB
	if _, err := st.br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after headers of 256 MiB: %v, want the stream closed", err)
	}

	st = rawStream(t, ts, streamToken)
	frame := appendFrame(nil, http.Header{"Authorization": {"Bearer " + streamToken}}, nil)
	frame = frame[:len(frame)-1]                        // drop the body length (0)
	frame = append(frame, 0x80, 0x80, 0x80, 0x80, 0x01) // a body of 256 MiB, never sent
	st.write(t, frame)
	status, _, body, trailer := st.read(t)
	if status != http.StatusOK || !strings.Contains(body, "<int>4</int>") || trailer != streamEnds {
		t.Fatalf("a body of 256 MiB: %d %s, trailer %d; want fault 4, and the stream's end", status, body, trailer)
	}
	if _, err := st.br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after a body too long to skip: %v, want the stream closed", err)
	}
}

// CloseStreams closes an idle stream at once, and lets a call in
// progress finish and answer first.
func TestCloseStreamsLetsCallsFinish(t *testing.T) {
	slow, started, release := gated("slow", 1)
	s, ts, _ := streamServer(t, true, slow)
	idle := rawStream(t, ts, streamToken)
	busy, _, _ := streamClient(ts.URL, streamToken)
	result := make(chan error, 1)
	go func() {
		got, err := busy.Call(context.Background(), "slow")
		if err == nil && got != "done" {
			err = errors.New("wrong result")
		}
		result <- err
	}()
	<-started
	closed := make(chan struct{})
	go func() { s.CloseStreams(context.Background()); close(closed) }()
	if _, err := idle.br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle stream: %v, want closed", err)
	}
	select {
	case <-closed:
		t.Fatal("CloseStreams returned while a call was in progress")
	default:
	}
	close(release)
	if err := <-result; err != nil {
		t.Fatalf("the call in progress: %v", err)
	}
	<-closed
}

// A refused call (here too large; busy or a wrong token alike) leaves
// the stream usable: the calls after it go on the same connection.
func TestStreamGoesOnAfterARefusedCall(t *testing.T) {
	s := NewServer(Limits{MaxBodyBytes: 1024}, nil)
	for _, m := range testMethods() {
		s.Register(m)
	}
	s.AcceptStreams()
	ts, conns := countingServer(t, s)
	t.Cleanup(func() { s.CloseStreams(context.Background()) })
	c, _, _ := streamClient(ts.URL, "")
	for i := range 20 {
		var f *Fault
		if _, err := c.Call(t.Context(), "first", strings.Repeat("x", 2048)); !errors.As(err, &f) || f.Code != TooLarge {
			t.Fatalf("round %d: a call over the limit: %v, want fault %d", i, err, TooLarge)
		}
		if got, err := c.Call(t.Context(), "add", i, 1); err != nil || got != int64(i+1) {
			t.Fatalf("round %d: the call after a refused one: %v, %v", i, got, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("the server saw %d connections, want the one stream", n)
	}
}

// A call's deadline stays its own: once it has passed, the stream is
// still good for the next call; and the handler's context ends when the
// caller stops waiting, as it does when a plain request's client goes.
func TestStreamDeadlines(t *testing.T) {
	gaveUp := make(chan error, 1)
	_, ts, conns := streamServer(t, true, Method{Name: "wait", Handler: func(ctx context.Context, _ []any) (any, error) {
		<-ctx.Done()
		gaveUp <- ctx.Err()
		return nil, ctx.Err()
	}})
	c, _, _ := streamClient(ts.URL, streamToken)
	for i := range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		if _, err := c.Call(ctx, "add", 1, 1); err != nil {
			t.Fatal(err)
		}
		<-ctx.Done() // its deadline has passed, with the stream idle
		cancel()
		if n := conns.Load(); n != 1 {
			t.Fatalf("call %d: the server saw %d connections, want the one stream", i, n)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Call(ctx, "wait"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a call past its deadline: %v, want context.DeadlineExceeded", err)
	}
	if err := <-gaveUp; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the handler's context ended with %v, want its deadline", err)
	}
}

// Each call is served with its own frame's headers (the term a
// coordinator sends), not the upgrade's nor the call's before it.
func TestStreamHeadersArePerCall(t *testing.T) {
	_, ts, _ := streamServer(t, true, Method{Name: "term", Handler: func(ctx context.Context, _ []any) (any, error) {
		return RequestHeader(ctx, "X-Twopc-Term"), nil
	}})
	st := rawStream(t, ts, streamToken)
	for _, term := range []string{"7", "", "9"} {
		h := http.Header{"Authorization": {"Bearer " + streamToken}}
		if term != "" {
			h.Set("X-Twopc-Term", term)
		}
		_, _, body := st.call(t, h, "<methodCall><methodName>term</methodName></methodCall>")
		if want := "<string>" + term + "</string>"; !strings.Contains(body, want) && !(term == "" && strings.Contains(body, "<string></string>")) {
			t.Fatalf("term %q: reply %s", term, body)
		}
	}
}

// A call cancelled while the server works on it returns at once, and
// its stream is not used again.
func TestStreamCancel(t *testing.T) {
	block, started, release := gated("block", 1)
	defer close(release)
	_, ts, _ := streamServer(t, true, block)
	c, tr, _ := streamClient(ts.URL, streamToken)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-started; cancel() }()
	if _, err := c.Call(ctx, "block"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	tr.mu.Lock()
	n := len(tr.idle[ts.URL+"/RPC2"])
	tr.mu.Unlock()
	if n != 0 {
		t.Fatalf("the cancelled call's stream went back to the pool")
	}
}

// rawStream is a stream opened by hand, to send what a StreamTransport
// never would.
type rawStreamConn struct {
	c  net.Conn
	br *bufio.Reader
}

func rawStream(t *testing.T, ts *httptest.Server, token string) *rawStreamConn {
	t.Helper()
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/RPC2", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", StreamProtocol)
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, req)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v, %v", resp, err)
	}
	return &rawStreamConn{c: c, br: br}
}

func (st *rawStreamConn) write(t *testing.T, b []byte) {
	t.Helper()
	if _, err := st.c.Write(b); err != nil {
		t.Fatal(err)
	}
}

func (st *rawStreamConn) read(t *testing.T) (int, http.Header, string, byte) {
	t.Helper()
	status, err := readUvarint(st.br)
	if err != nil {
		t.Fatal(err)
	}
	h, size, err := readFrameHeader(st.br)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(st.br, body); err != nil {
		t.Fatal(err)
	}
	trailer, err := st.br.ReadByte()
	if err != nil {
		t.Fatal(err)
	}
	return int(status), h, string(body), trailer
}

func (st *rawStreamConn) call(t *testing.T, h http.Header, body string) (int, http.Header, string) {
	st.write(t, appendFrame(nil, h, []byte(body)))
	status, rh, reply, trailer := st.read(t)
	if trailer != streamGoesOn {
		t.Fatalf("trailer %d after %s", trailer, reply)
	}
	return status, rh, reply
}

// Streams a burst opened and that stay idle are closed, not kept for
// ever: the pool closes those idle past streamIdle when a stream comes
// back.
func TestStreamPoolClosesIdleStreams(t *testing.T) {
	wait, started, release := gated("wait", 3)
	_, ts, _ := streamServer(t, true, wait)
	c, tr, _ := streamClient(ts.URL, streamToken)
	errs := make(chan error, 3)
	for range 3 {
		go func() { _, err := c.Call(context.Background(), "wait"); errs <- err }()
	}
	for range 3 {
		<-started
	}
	close(release)
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	key := ts.URL + "/RPC2"
	tr.mu.Lock()
	pool := append([]*streamConn(nil), tr.idle[key]...)
	if len(pool) != 3 {
		t.Fatalf("%d streams in the pool after a burst of 3", len(pool))
	}
	for _, sc := range pool[:2] { // the bottom two: idle for long
		sc.used = time.Now().Add(-2 * streamIdle)
	}
	tr.mu.Unlock()
	if _, err := c.Call(t.Context(), "add", 1, 1); err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	left := len(tr.idle[key])
	tr.mu.Unlock()
	if left != 1 {
		t.Fatalf("%d streams in the pool, want the one in use", left)
	}
	for i, sc := range pool[:2] {
		if _, err := sc.c.Write([]byte{0}); !errors.Is(err, net.ErrClosed) {
			t.Errorf("idle stream %d: write gave %v, want it closed", i, err)
		}
	}
}

// FuzzStreamFrames feeds any bytes to a stream's server side: no panic,
// every call it reads is answered with a frame that parses, status 200
// (faults included), and it stops at the first thing that is not a frame.
func FuzzStreamFrames(f *testing.F) {
	auth := http.Header{"Authorization": {"Bearer " + streamToken}, "Upgrade": {StreamProtocol}}
	f.Add(appendFrame(nil, auth, []byte(callXML(""))))
	f.Add(appendFrame(nil, http.Header{"Content-Type": {"text/xml"}}, []byte(callXML(""))))
	f.Add(append(appendFrame(nil, auth, []byte("<methodCall>")), 0xff, 0xff))
	f.Add([]byte{3, 'a', ':', ' ', 0})
	s := NewServer(Limits{MaxBodyBytes: 1 << 16}, nil)
	for _, m := range testMethods() {
		if m.Name != "boom" {
			s.Register(m)
		}
	}
	s.SetCredentials(Credential{Secret: NewSecret(streamToken)})
	s.AcceptStreams() // a frame asking to upgrade must not reach serveStream
	up := httptest.NewRequest(http.MethodPost, "/RPC2", nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReader(bytes.NewReader(data))
		var out bytes.Buffer
		for range 64 {
			out.Reset()
			goesOn := s.serveFrame(up, nopConn{}, br, bufio.NewWriter(&out))
			if out.Len() == 0 {
				return // not a frame: no reply
			}
			r := bufio.NewReader(bytes.NewReader(out.Bytes()))
			status, err := readUvarint(r)
			if err != nil || status != http.StatusOK {
				t.Fatalf("reply status %d, %v", status, err)
			}
			_, size, err := readFrameHeader(r)
			if err != nil || int64(r.Buffered()) != size+1 {
				t.Fatalf("reply frame: %d bytes after its head for a body of %d and a trailer, %v", r.Buffered(), size, err)
			}
			if !goesOn {
				return
			}
		}
	})
}

// nopConn stands for a stream's connection where only its deadlines are
// set.
type nopConn struct{ net.Conn }

func (nopConn) SetWriteDeadline(time.Time) error { return nil }

// Streams work over TLS as over plain TCP: the client offers no ALPN,
// so the server speaks HTTP/1.1, which has upgrades.
func TestStreamOverTLS(t *testing.T) {
	s := NewServer(Limits{}, nil)
	for _, m := range testMethods() {
		s.Register(m)
	}
	s.SetCredentials(Credential{Secret: NewSecret(streamToken)})
	s.AcceptStreams()
	ts := httptest.NewUnstartedServer(s)
	ts.EnableHTTP2 = true // a server that would take h2 if offered
	ts.StartTLS()
	t.Cleanup(ts.Close)
	t.Cleanup(func() { s.CloseStreams(context.Background()) })
	roots := ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	fb := &countingTransport{base: defaultTransport()}
	c := NewClient(ts.URL+"/RPC2", WithToken(&http.Client{Transport: NewStreamTransport(&tls.Config{RootCAs: roots}, fb)}, streamToken))
	for i := range 3 {
		if got, err := c.Call(t.Context(), "add", i, 1); err != nil || got != int64(i+1) {
			t.Fatalf("call %d over TLS: %v, %v", i, got, err)
		}
	}
	if n := fb.n.Load(); n != 0 {
		t.Fatalf("%d calls fell back to plain HTTPS", n)
	}
}

// A Client over this package's transports hands them its calls without
// an http.Request (outgoing). The server must see each call as it would
// through net/http's Client and RoundTrip: the same headers, the token,
// the timeout, the same bytes counted; on a stream, and on plain HTTP.
func TestPostedCallsAsRoundTripped(t *testing.T) {
	headers := Method{Name: "headers", Handler: func(ctx context.Context, _ []any) (any, error) {
		return map[string]any{
			"type": RequestHeader(ctx, "Content-Type"), "term": RequestHeader(ctx, "X-Twopc-Term"),
			"auth": RequestHeader(ctx, "Authorization"), "timeout": RequestHeader(ctx, timeoutHeader) != "",
		}, nil
	}}
	for _, streams := range []bool{true, false} {
		_, ts, _ := streamServer(t, streams, headers)
		seen := map[bool]any{}
		counted := map[bool][2]int64{}
		for _, posted := range []bool{true, false} {
			fb := &countingTransport{base: defaultTransport()}
			hc, traffic := Metered(WithToken(&http.Client{Transport: NewStreamTransport(nil, fb)}, streamToken))
			c := NewClient(ts.URL+"/RPC2", hc).OwnEncoder().WithHeader("X-Twopc-Term", "7")
			if c.post == nil {
				t.Fatal("a client over the package's transports does not post")
			}
			if !posted {
				c.post = nil // through net/http's Client
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			got, err := c.Call(ctx, "headers")
			cancel()
			if err != nil {
				t.Fatalf("streams %v, posted %v: %v", streams, posted, err)
			}
			if fell := fb.n.Load() != 0; fell == streams {
				t.Fatalf("streams %v, posted %v: %d calls over plain HTTP", streams, posted, fb.n.Load())
			}
			seen[posted] = got
			sent, received := traffic.Bytes()
			counted[posted] = [2]int64{sent, received}
		}
		want := map[string]any{"type": "text/xml; charset=utf-8", "term": "7", "auth": "Bearer " + streamToken, "timeout": streams}
		if !reflect.DeepEqual(seen[false], want) {
			t.Fatalf("streams %v: through net/http the server saw %v, want %v", streams, seen[false], want)
		}
		if !reflect.DeepEqual(seen[true], seen[false]) {
			t.Fatalf("streams %v: posted, the server saw %v; through net/http %v", streams, seen[true], seen[false])
		}
		if counted[true] != counted[false] {
			t.Fatalf("streams %v: traffic posted %v, through net/http %v", streams, counted[true], counted[false])
		}
	}
	// Over net/http's Transport alone, calls go through its Client.
	hc, _ := Metered(WithToken(NewHTTPClient(), streamToken))
	if c := NewClient("http://127.0.0.1:1/RPC2", hc); c.post != nil {
		t.Fatal("a client over net/http's Transport posts")
	}
}
