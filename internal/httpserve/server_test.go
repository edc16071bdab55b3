package httpserve

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// who says which server served a request: "here" or "net/http".
func who(w http.ResponseWriter) string {
	if _, ok := w.(*responseWriter); ok {
		return "here"
	}
	return "net/http"
}

// echo answers "<who> <method> <path> <body>", with a Content-Length.
func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	reply := fmt.Sprintf("%s %s %s %s", who(w), r.Method, r.URL.Path, body)
	w.Header().Set("Content-Length", fmt.Sprint(len(reply)))
	io.WriteString(w, reply)
}

type testServer struct {
	*Server
	addr    string
	accepts atomic.Int64
	done    chan error
}

// start serves h with the given http.Server settings (Handler is set).
func start(t testing.TB, h http.Handler, hs *http.Server) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if hs == nil {
		hs = &http.Server{}
	}
	hs.Handler = h
	ts := &testServer{Server: &Server{HTTP: hs, Paths: []string{"/RPC2", "/"}}, addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() { ts.done <- ts.Serve(countingListener{ln, &ts.accepts}) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ts.Shutdown(ctx)
	})
	return ts
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, ts *testServer) *client {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

func (cl *client) send(raw string) {
	cl.t.Helper()
	if _, err := io.WriteString(cl.c, raw); err != nil {
		cl.t.Fatal(err)
	}
}

// read reads one response: its status, body and whether it says
// "Connection: close".
func (cl *client) read() (int, string, bool) {
	cl.t.Helper()
	resp, err := http.ReadResponse(cl.br, nil)
	if err != nil {
		cl.t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		cl.t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Close
}

// closed says whether the server closed the connection (reading gives EOF
// or a reset, not a response).
func (cl *client) closed() bool {
	_ = cl.c.SetReadDeadline(time.Now().Add(time.Minute)) // no hang if it never is
	_, err := cl.br.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// newLogger calls f for each line logged.
func newLogger(f func()) *log.Logger {
	return log.New(writerFunc(func(p []byte) (int, error) { f(); return len(p), nil }), "", 0)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func post(path, body string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
}

func TestCallsAreServedHereAndTheRestByNetHTTP(t *testing.T) {
	ts := start(t, http.HandlerFunc(echo), nil)
	cl := dial(t, ts)
	for i, want := range []string{"here POST /RPC2 a", "here POST / b"} {
		cl.send(post([]string{"/RPC2", "/"}[i], string("ab"[i])))
		if code, body, _ := cl.read(); code != 200 || body != want {
			t.Fatalf("call %d: %d %q, want 200 %q", i, code, body, want)
		}
	}
	// A page on the same connection: net/http takes it, and keeps it.
	cl.send("GET /page HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, body, _ := cl.read(); body != "net/http GET /page " {
		t.Fatalf("page: %q", body)
	}
	cl.send(post("/RPC2", "c"))
	if _, body, _ := cl.read(); body != "net/http POST /RPC2 c" {
		t.Fatalf("after the page: %q", body)
	}
	// Past the header limit this server reads with: net/http reads on.
	large := strings.Repeat("x", 2<<20)
	cl.send(post("/RPC2", large))
	if code, body, _ := cl.read(); body != "net/http POST /RPC2 "+large {
		t.Fatalf("a 2 MiB call after the page: %d, %d bytes back", code, len(body))
	}
	// Near misses of the request line go to net/http too.
	for _, line := range []string{"POST /RPC2x HTTP/1.1", "POST /RPC HTTP/1.1", "POST /RPC2 HTTP/1.0", "PUT /RPC2 HTTP/1.1"} {
		cl := dial(t, ts)
		cl.send(strings.Replace(post("/RPC2", "d"), "POST /RPC2 HTTP/1.1", line, 1))
		if code, body, _ := cl.read(); strings.HasPrefix(body, "here") {
			t.Errorf("%q was served here: %d %q", line, code, body)
		}
	}
}

func TestKeepAliveWithGoClient(t *testing.T) {
	ts := start(t, http.HandlerFunc(echo), nil)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	for i := range 50 {
		resp, err := c.Post("http://"+ts.addr+"/RPC2", "text/xml", strings.NewReader(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("here POST /RPC2 %d", i); string(body) != want || resp.Header.Get("Date") == "" {
			t.Fatalf("call %d: %q (Date %q), want %q", i, body, resp.Header.Get("Date"), want)
		}
	}
	if n := ts.accepts.Load(); n != 1 {
		t.Fatalf("50 calls took %d connections, want 1", n)
	}
}

func TestPipelinedCallsAnswerInOrder(t *testing.T) {
	ts := start(t, http.HandlerFunc(echo), nil)
	cl := dial(t, ts)
	cl.send(post("/RPC2", "1") + post("/RPC2", "2") + post("/RPC2", "3"))
	for i := 1; i <= 3; i++ {
		if _, body, _ := cl.read(); body != fmt.Sprintf("here POST /RPC2 %d", i) {
			t.Fatalf("reply %d: %q", i, body)
		}
	}
}

func TestChunkedBody(t *testing.T) {
	ts := start(t, http.HandlerFunc(echo), nil)
	cl := dial(t, ts)
	cl.send("POST /RPC2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
	if _, body, _ := cl.read(); body != "here POST /RPC2 abcde" {
		t.Fatalf("%q", body)
	}
	cl.send(post("/RPC2", "next"))
	if _, body, _ := cl.read(); body != "here POST /RPC2 next" {
		t.Fatalf("after a chunked body: %q", body)
	}
}

func TestExpectContinue(t *testing.T) {
	ts := start(t, http.HandlerFunc(echo), nil)
	cl := dial(t, ts)
	cl.send("POST /RPC2 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	if code, _, _ := cl.read(); code != http.StatusContinue {
		t.Fatalf("got %d before the body, want 100", code)
	}
	cl.send("body")
	if code, body, _ := cl.read(); code != 200 || body != "here POST /RPC2 body" {
		t.Fatalf("%d %q", code, body)
	}

	cl = dial(t, ts)
	cl.send("POST /RPC2 HTTP/1.1\r\nHost: x\r\nExpect: something\r\nContent-Length: 1\r\n\r\nx")
	if code, _, closing := cl.read(); code != http.StatusExpectationFailed || !closing {
		t.Fatalf("unknown Expect: %d (closing %v), want 417 and close", code, closing)
	}
}

func TestBadRequestsGetAnHTTPError(t *testing.T) {
	ts := start(t, http.HandlerFunc(echo), &http.Server{MaxHeaderBytes: 1 << 10})
	for _, c := range []struct {
		name, raw string
		code      int
	}{
		{"no Host", "POST /RPC2 HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400},
		{"bad header line", "POST /RPC2 HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n", 400},
		{"bad length", "POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n", 400},
		{"bad Host", "POST /RPC2 HTTP/1.1\r\nHost: a b/c\r\nContent-Length: 0\r\n\r\n", 400},
		{"header too large", "POST /RPC2 HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 8<<10) + "\r\n\r\n", 431},
	} {
		cl := dial(t, ts)
		cl.send(c.raw)
		code, _, closing := cl.read()
		if code != c.code || !closing || !cl.closed() {
			t.Errorf("%s: %d (closing %v), want %d and the connection closed", c.name, code, closing, c.code)
		}
	}
}

func TestUnreadBodies(t *testing.T) {
	ignore := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
	})
	ts := start(t, ignore, nil)
	// A small unread body is skipped, and the connection goes on.
	cl := dial(t, ts)
	cl.send(post("/RPC2", strings.Repeat("s", 1000)) + post("/RPC2", "x"))
	for i := range 2 {
		if code, body, closing := cl.read(); code != 200 || body != "ok" || closing {
			t.Fatalf("reply %d: %d %q closing=%v", i, code, body, closing)
		}
	}
	// A large one ends the connection after the reply.
	cl = dial(t, ts)
	cl.send(fmt.Sprintf("POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 10<<20))
	go io.Copy(cl.c, io.LimitReader(zeros{}, 10<<20)) // ends on its own, or when the connection does
	if code, body, closing := cl.read(); code != 200 || body != "ok" || !closing || !cl.closed() {
		t.Fatalf("large unread body: %d %q closing=%v, want \"Connection: close\" and the connection closed", code, body, closing)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestRepliesWithoutOrWithWrongLengths(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("X-Case") {
		case "none":
			io.WriteString(w, "kept ")
			io.WriteString(w, "until the end")
		case "short":
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "short")
		case "long":
			w.Header().Set("Content-Length", "2")
			io.WriteString(w, "too long")
		case "nocontent":
			w.WriteHeader(http.StatusNoContent)
		}
	}), nil)
	ask := func(cl *client, c string) {
		cl.send("POST /RPC2 HTTP/1.1\r\nHost: x\r\nX-Case: " + c + "\r\nContent-Length: 0\r\n\r\n")
	}

	cl := dial(t, ts)
	ask(cl, "none")
	if code, body, closing := cl.read(); code != 200 || body != "kept until the end" || closing {
		t.Fatalf("no length: %d %q closing=%v", code, body, closing)
	}
	ask(cl, "nocontent")
	if code, body, _ := cl.read(); code != 204 || body != "" {
		t.Fatalf("204: %d %q", code, body)
	}
	ask(cl, "none")
	if _, body, _ := cl.read(); body != "kept until the end" {
		t.Fatalf("after a 204: %q", body)
	}
	// A reply shorter than it said cannot be ended: the connection is.
	cl = dial(t, ts)
	ask(cl, "short")
	resp, err := http.ReadResponse(cl.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("a reply 5 bytes short of its Content-Length read to its end")
	}
	// A longer one is cut at its length, and the connection ends.
	cl = dial(t, ts)
	ask(cl, "long")
	if _, body, _ := cl.read(); body != "to" || !cl.closed() {
		t.Fatalf("too long: %q, want \"to\" and the connection closed", body)
	}
}

func TestPanicClosesOnlyItsConnection(t *testing.T) {
	var logged atomic.Int64
	hs := &http.Server{ErrorLog: newLogger(func() { logged.Add(1) })}
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Panic") != "" {
			panic("planted")
		}
		echo(w, r)
	}), hs)
	cl := dial(t, ts)
	cl.send("POST /RPC2 HTTP/1.1\r\nHost: x\r\nX-Panic: 1\r\nContent-Length: 0\r\n\r\n")
	if !cl.closed() {
		t.Fatal("the connection of a panicking handler was not closed")
	}
	if logged.Load() != 1 {
		t.Fatalf("panic logged %d times, want 1", logged.Load())
	}
	cl = dial(t, ts)
	cl.send(post("/RPC2", "still"))
	if _, body, _ := cl.read(); body != "here POST /RPC2 still" {
		t.Fatalf("after a panic: %q", body)
	}
}

func TestHijack(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: lines\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			brw.WriteString("echo " + line)
			brw.Flush()
		}
	}), nil)
	cl := dial(t, ts)
	// The first line follows the request in the same write: it is in the
	// buffer handed over.
	cl.send("POST /RPC2 HTTP/1.1\r\nHost: x\r\nUpgrade: lines\r\nConnection: Upgrade\r\n\r\nfirst\n")
	resp, err := http.ReadResponse(cl.br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	for _, l := range []string{"", "second\n"} {
		cl.send(l)
		got, err := cl.br.ReadString('\n')
		if want := "echo " + map[string]string{"": "first\n"}[l] + l; err != nil || got != want {
			t.Fatalf("got %q %v, want %q", got, err, want)
		}
	}
}

func TestShutdownClosesIdleAndFinishesBusy(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Block") != "" {
			close(entered)
			<-release
		}
		echo(w, r)
	}), nil)
	idle := dial(t, ts)
	idle.send(post("/RPC2", "i"))
	idle.read()
	busy := dial(t, ts)
	busy.send("POST /RPC2 HTTP/1.1\r\nHost: x\r\nX-Block: 1\r\nContent-Length: 1\r\n\r\nb")
	<-entered

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shut <- ts.Shutdown(ctx)
	}()
	if !idle.closed() {
		t.Fatal("an idle connection was not closed by Shutdown")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while a call was being served", err)
	default:
	}
	close(release)
	code, body, closing := busy.read()
	if code != 200 || body != "here POST /RPC2 b" || !closing || !busy.closed() {
		t.Fatalf("busy call: %d %q closing=%v, want its reply, then the connection closed", code, body, closing)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-ts.done; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve returned %v, want http.ErrServerClosed", err)
	}
	if c, err := net.Dial("tcp", ts.addr); err == nil {
		c.Close()
		t.Fatal("the listener still accepts after Shutdown")
	}
}

func TestSlowHeadersAreCutOff(t *testing.T) {
	ts := start(t, http.HandlerFunc(echo), &http.Server{ReadHeaderTimeout: 50 * time.Millisecond, IdleTimeout: 50 * time.Millisecond})
	silent := dial(t, ts)
	half := dial(t, ts)
	half.send("POST /RPC2 HTTP/1.1\r\nHost:")
	idle := dial(t, ts)
	idle.send(post("/RPC2", "x"))
	idle.read()
	for name, cl := range map[string]*client{"silent": silent, "half a request": half, "idle": idle} {
		if !cl.closed() {
			t.Errorf("%s: connection not closed", name)
		}
	}
}

// A client still sending a large body gets the refusal its server sent
// before reading it, rather than a reset connection.
func TestRefusalReachesAClientStillSending(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		http.Error(w, "not authorised", http.StatusForbidden)
	}), nil)
	c := &http.Client{}
	for i := range 16 {
		resp, err := c.Post("http://"+ts.addr+"/RPC2", "text/xml", io.LimitReader(zeros{}, 64<<20))
		if err != nil {
			t.Fatalf("call %d: %v, want the 403", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("call %d: %d, want 403", i, resp.StatusCode)
		}
	}
}

// A Go client whose calls leave large bodies unread is told the
// connection ends with each reply, so it never sends a call on a
// connection the server is closing (it would not resend a POST).
func TestUnreadBodiesWithGoClient(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Ignore") == "" {
			io.Copy(io.Discard, r.Body)
		}
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
	}), nil)
	c := &http.Client{}
	for i := range 100 {
		for _, ignore := range []string{"1", ""} {
			req, _ := http.NewRequest("POST", "http://"+ts.addr+"/RPC2", strings.NewReader(strings.Repeat("b", 300<<10)))
			req.Header.Set("X-Ignore", ignore)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("call %d (ignored %q): %v", i, ignore, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
}

// rawReply reads one reply's bytes whole: head and Content-Length body,
// with its Date line taken out (it changes by the second).
func (cl *client) rawReply() string {
	cl.t.Helper()
	var head strings.Builder
	n := 0
	for {
		line, err := cl.br.ReadString('\n')
		if err != nil {
			cl.t.Fatal(err)
		}
		if strings.HasPrefix(line, "Content-Length: ") {
			fmt.Sscanf(line, "Content-Length: %d", &n)
		}
		if !strings.HasPrefix(line, "Date: ") {
			head.WriteString(line)
		}
		if line == "\r\n" {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(cl.br, body); err != nil {
		cl.t.Fatal(err)
	}
	return head.String() + string(body)
}

// WriteWhole sends the bytes that the headers, WriteHeader and Write
// send: alone, and after a header the handler set.
func TestWriteWholeSendsWhatHeadersAndWriteSend(t *testing.T) {
	const typ = "text/xml; charset=utf-8"
	type whole interface{ WriteWhole(string, []byte) }
	var wholes atomic.Int64
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Close") != "" {
			w.Header().Set("Connection", "close")
		}
		if ww, ok := w.(whole); ok && r.Header.Get("X-Whole") != "" {
			wholes.Add(1)
			ww.WriteWhole(typ, body)
			return
		}
		w.Header().Set("Content-Type", typ)
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body)
	})
	ts := start(t, handler, nil)
	for _, extra := range []string{"", "X-Close: 1\r\n"} {
		var got [2]string
		for i, how := range []string{"X-Whole: 1\r\n", ""} {
			cl := dial(t, ts)
			cl.send("POST /RPC2 HTTP/1.1\r\nHost: x\r\n" + how + extra + "Content-Length: 4\r\n\r\n<x/>")
			got[i] = cl.rawReply()
		}
		if got[0] != got[1] || !strings.Contains(got[0], "Content-Type: "+typ) {
			t.Errorf("with %q: WriteWhole sent\n%q\nheaders and Write sent\n%q", extra, got[0], got[1])
		}
	}
	if n := wholes.Load(); n != 2 {
		t.Fatalf("WriteWhole ran %d times, want 2 (the calls went to net/http?)", n)
	}
}

// With Calls set, the calls of Paths go to it, and the rest to
// HTTP.Handler, as before.
func TestCallsHandler(t *testing.T) {
	routed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "routed") })
	ts := start(t, routed, nil)
	ts.Calls = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "call") })
	cl := dial(t, ts)
	cl.send(post("/RPC2", "a"))
	if _, body, _ := cl.read(); body != "call" {
		t.Fatalf("a call got %q, want Calls' answer", body)
	}
	cl.send("GET /page HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, body, _ := cl.read(); body != "routed" {
		t.Fatalf("a page got %q, want HTTP.Handler's answer", body)
	}
}
