package rpc

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// untouchable is a request body that fails the test if it is read.
type untouchable struct{ t *testing.T }

func (u untouchable) Read([]byte) (int, error) {
	u.t.Error("the body of a request that must be refused unread was read")
	return 0, io.ErrUnexpectedEOF
}

// junk is a body of n bytes that are not XML, made as they are read.
type junk struct{ n int64 }

func (j *junk) Read(p []byte) (int, error) {
	if j.n <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), j.n)]
	for i := range p {
		p[i] = 'A'
	}
	j.n -= int64(len(p))
	return len(p), nil
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// serveOnce runs one request through s and decodes the reply.
func serveOnce(t *testing.T, s *Server, token string, length int64, body io.Reader) (*httptest.ResponseRecorder, any, error) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/RPC2", body)
	r.ContentLength = length
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	v, err := DecodeResponse(bytes.NewReader(w.Body.Bytes()), Limits{})
	return w, v, err
}

// The coordinator's arrangement: the client token admits everything, the
// peer token only small bodies, anything else nothing. A refused request
// is answered on a connection that then closes, without a byte of its
// body held: a body over twice the limit is not read at all, a shorter
// one is read and thrown away (so that a client that sends it all before
// reading gets the fault).
func TestAdmissionBeforeTheBody(t *testing.T) {
	s := NewServer(Limits{MaxBodyBytes: 1 << 20}, nil)
	for _, m := range testMethods() {
		s.Register(m)
	}
	s.SetCredentials(Credential{Secret: NewSecret("client")}, Credential{Secret: NewSecret("peer"), MaxBodyBytes: 200})
	call := encodeCall(t, "first", "x")

	for _, tc := range []struct {
		name, token string
		length      int64
		code        int
		msg         string
	}{
		{"no token", "", 50 << 20, NotAuthorised, "missing or wrong token"},
		{"wrong token", "nope", 1536 << 10, NotAuthorised, "missing or wrong token"},
		{"no token, unknown length", "", -1, NotAuthorised, "missing or wrong token"},
		{"client token, body over twice the limit", "client", 2<<20 + 1, TooLarge, "exceeds 1048576 bytes"},
		{"client token, body over the limit", "client", 1536 << 10, TooLarge, "exceeds 1048576 bytes"},
		{"peer token, body over its small limit", "peer", 201, TooLarge, "exceeds 200 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = &junk{tc.length}
			if tc.length < 0 {
				body = &junk{1536 << 10}
			}
			if tc.length > 2<<20 {
				body = untouchable{t}
			}
			var (
				w   *httptest.ResponseRecorder
				err error
			)
			if n := allocated(func() { w, _, err = serveOnce(t, s, tc.token, tc.length, body) }); n > 256<<10 {
				t.Errorf("refusing it allocated %d bytes", n)
			}
			wantFault(t, err, tc.code, tc.msg)
			if w.Header().Get("Connection") != "close" {
				t.Errorf("Connection: %q, want close", w.Header().Get("Connection"))
			}
		})
	}
	for _, token := range []string{"client", "peer"} {
		_, v, err := serveOnce(t, s, token, int64(len(call)), strings.NewReader(call))
		if err != nil || v != "x" {
			t.Errorf("%s token: got %v, %v", token, v, err)
		}
	}
	// A peer-token body sent without a length is cut at its limit too.
	long := encodeCall(t, "first", strings.Repeat("x", 200))
	_, _, err := serveOnce(t, s, "peer", -1, strings.NewReader(long))
	wantFault(t, err, TooLarge, "exceeds 200 bytes")
}

// Without a client token, the client credential admits everyone; with no
// credentials at all, so does the server.
func TestAdmissionOpen(t *testing.T) {
	for _, creds := range [][]Credential{nil, {{Secret: Secret{}}, {Secret: NewSecret("peer"), MaxBodyBytes: 100}}} {
		s := NewServer(Limits{}, nil)
		s.Register(testMethods()[1])
		s.SetCredentials(creds...)
		call := encodeCall(t, "first", strings.Repeat("x", 1000))
		if _, v, err := serveOnce(t, s, "", int64(len(call)), strings.NewReader(call)); err != nil || v != strings.Repeat("x", 1000) {
			t.Errorf("credentials %v: got %.20v, %v", creds, v, err)
		}
	}
}

// "Expect: 100-continue" with a length over the limit gets the fault, and
// never "100 Continue": the client does not send the body at all.
func TestExpectContinueOverTheLimit(t *testing.T) {
	ts, _ := newTestServer(t, Limits{MaxBodyBytes: 1 << 20})
	resp := rawRequest(t, ts, "Expect: 100-continue\r\nContent-Length: 100000000\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %s, want 200 with fault 4", resp.Status)
	}
	_, err := DecodeResponse(resp.Body, Limits{})
	wantFault(t, err, TooLarge, "exceeds 1048576 bytes")
}

// A body that does not arrive within the read timeout gets a transport
// fault (not a parse error), without the socket addresses.
func TestReadTimeoutFault(t *testing.T) {
	s := NewServer(Limits{}, nil)
	ts := httptest.NewUnstartedServer(s)
	ts.Config.ReadTimeout = 200 * time.Millisecond
	ts.Start()
	defer ts.Close()
	resp := rawRequest(t, ts, "Content-Length: 1000\r\n\r\n<?xml version")
	_, err := DecodeResponse(resp.Body, Limits{})
	wantFault(t, err, TransportError, "request body not received in time")
	if f, _ := asFault(err); f != nil && strings.Contains(f.Message, "127.0.0.1") {
		t.Errorf("the fault names addresses: %q", f.Message)
	}
	if !resp.Close {
		t.Error("the connection is kept open after a body that could not be read")
	}
}

// rawRequest sends a POST's first line, then rest (the remaining headers,
// the blank line and whatever body), as it is, and reads the answer.
func rawRequest(t *testing.T, ts *httptest.Server, rest string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	io.WriteString(conn, "POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"+rest)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}
