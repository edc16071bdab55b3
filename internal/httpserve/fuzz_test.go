package httpserve

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// FuzzServeConn sends arbitrary bytes as a client would, then ends its
// side: whatever comes back must be a sequence of well-formed HTTP
// responses, and the server must close the connection; a panic in the
// server fails the test too (it is in this process).
func FuzzServeConn(f *testing.F) {
	for _, seed := range []string{
		post("/RPC2", "a") + post("/", "b"),
		"POST /RPC2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST /RPC2 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab",
		"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab",
		"POST /RPC2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx" + post("/RPC2", "after close"),
		post("/RPC2", "a") + "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /RPC2 HTTP/1.1\r\n\r\n",
		"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
	} {
		f.Add([]byte(seed))
	}
	ts := start(f, http.HandlerFunc(echo), &http.Server{ReadHeaderTimeout: time.Second, ReadTimeout: time.Second, IdleTimeout: time.Second, MaxHeaderBytes: 4 << 10})
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() {
			c.Write(raw)
			c.(*net.TCPConn).CloseWrite()
		}()
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		br := bufio.NewReader(c)
		for {
			if _, err := br.Peek(1); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("the server did not close the connection")
				}
				return // closed
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("not an HTTP response: %v", err)
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				t.Fatalf("reply body: %v", err)
			}
		}
	})
}
