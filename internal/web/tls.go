package web

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// TLSListener returns a listener of TLS connections over ln, like
// tls.NewListener, except that a client speaking plain HTTP gets a 400
// whose body names the https URL to use (net/http would answer a bare
// "Client sent an HTTP request to an HTTPS server").
func TLSListener(ln net.Listener, cfg *tls.Config) net.Listener {
	return tlsListener{Listener: ln, cfg: cfg}
}

type tlsListener struct {
	net.Listener
	cfg *tls.Config
}

func (l tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return tls.Server(&sniffer{Conn: c}, l.cfg), nil
}

// errPlainHTTP fails the handshake of a plain HTTP client (net/http logs
// it as a TLS handshake error).
var errPlainHTTP = errors.New("plain HTTP request to an HTTPS port; answered with a hint to use https")

// sniffer looks at the first bytes a client sends. A TLS client starts
// with a handshake record (0x16); one that starts with an HTTP method
// gets the hint instead of a handshake.
type sniffer struct {
	net.Conn
	looked bool
}

func (s *sniffer) Read(p []byte) (int, error) {
	n, err := s.Conn.Read(p)
	if s.looked || n == 0 {
		return n, err
	}
	s.looked = true
	if !looksLikeHTTP(p[:n]) {
		return n, err
	}
	s.hint(p[:n])
	return 0, errPlainHTTP
}

// looksLikeHTTP is true for the start of an HTTP/1 request.
func looksLikeHTTP(b []byte) bool {
	for _, m := range []string{"GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "PATCH "} {
		if bytes.HasPrefix(b, []byte(m)) {
			return true
		}
	}
	return false
}

// hint answers the request that starts with first: 400, and the https
// URL it should have used.
func (s *sniffer) hint(first []byte) {
	url := "https://" + s.LocalAddr().String() + "/"
	if req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(first))); err == nil && req.Host != "" {
		url = "https://" + req.Host + req.URL.RequestURI()
	}
	body := fmt.Sprintf("This server speaks HTTPS, and the request came as plain HTTP: use %s\n", url)
	_ = s.SetDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(s.Conn, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"+
		"Content-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	// Read what else the client sent before closing: closing with unread
	// data makes TCP reset the connection, and the client may lose the
	// answer.
	if tc, ok := s.Conn.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(s.Conn, 1<<20))
}
