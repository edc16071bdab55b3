package httpserve

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
)

// readHead reads the head of a call (its request line one of s.lines)
// that is already buffered whole and as plain as clients write them:
// header lines of a token, a colon and visible text, one Host, one
// Content-Length of digits, and nothing that changes how the request is
// read or answered (Transfer-Encoding, Connection, Expect, Upgrade,
// Trailer, Pragma, a folded line). It makes the request net/http's
// ReadRequest would, with fewer allocations (seven fewer per put at a
// coordinator, go_memstats_mallocs_total under load): one slice
// for all the values, names of the usual headers not copied, the values
// a connection sent in its last call reused. Anything else is false,
// with nothing read, and the caller reads the request with ReadRequest.
func (s *Server) readHead(br *bufio.Reader, prev *http.Request) (*http.Request, bool) {
	var prevHeader http.Header
	var prevHost string
	if prev != nil {
		prevHeader, prevHost = prev.Header, prev.Host
	}
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, false
	}
	head := buf[:end+2] // each line with its CRLF
	path := ""
	for i, line := range s.lines {
		if bytes.HasPrefix(head, line) {
			path = s.Paths[i]
			head = head[len(line):]
			break
		}
	}
	if path == "" {
		return nil, false
	}
	n := bytes.Count(head, []byte("\r\n"))
	header := make(http.Header, n)
	values := make([]string, n)
	var host string
	length, hosts, lengths := int64(0), 0, 0
	for i := 0; len(head) > 0; i++ {
		eol := bytes.Index(head, []byte("\r\n"))
		line := head[:eol]
		head = head[eol+2:]
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return nil, false
		}
		name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
		if !isToken(name) || !isPlainValue(value) {
			return nil, false
		}
		key, known := knownHeader(name)
		switch key {
		case "Transfer-Encoding", "Connection", "Expect", "Upgrade", "Trailer", "Pragma", "Te":
			return nil, false
		case "Host":
			hosts++
			host = reuse([]string{prevHost}, value)
			continue // ReadRequest takes it out of the header, into req.Host
		case "Content-Length":
			lengths++
			if length = digits(value); length < 0 {
				return nil, false
			}
		}
		if !known {
			key = textproto.CanonicalMIMEHeaderKey(string(name))
		}
		if _, seen := header[key]; seen {
			return nil, false // repeated: net/http has its rules for that
		}
		values[i] = reuse(prevHeader[key], value)
		header[key] = values[i : i+1 : i+1]
	}
	if hosts != 1 || lengths != 1 {
		return nil, false
	}
	if _, err := br.Discard(len(buf[:end+4])); err != nil {
		return nil, false
	}
	req := &http.Request{
		Method: http.MethodPost, URL: &url.URL{Path: path}, RequestURI: path,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: header, Host: host, ContentLength: length, Body: http.NoBody,
	}
	if length > 0 {
		req.Body = &fixedBody{br: br, left: length}
	}
	return req, true
}

// fixedBody is a body of a known length, read from br: as net/http's,
// one that ends early is io.ErrUnexpectedEOF.
type fixedBody struct {
	br   *bufio.Reader
	left int64
}

func (b *fixedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	if err == io.EOF && b.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *fixedBody) Close() error { return nil }

// knownHeader is the canonical form of name if it is one that clients
// send with every call, without allocating it.
func knownHeader(name []byte) (string, bool) {
	for _, k := range [...]string{"Host", "Content-Length", "Content-Type", "User-Agent", "Accept-Encoding", "Authorization",
		"Transfer-Encoding", "Connection", "Expect", "Upgrade", "Trailer", "Pragma", "Te", "X-Twopc-Term"} {
		if len(k) == len(name) && bytes.EqualFold([]byte(k), name) {
			return k, true
		}
	}
	return "", false
}

// reuse returns value as a string: the one the connection's last call
// sent under the same name if equal (clients send the same headers with
// every call), else a copy.
func reuse(prev []string, value []byte) string {
	if len(prev) == 1 && prev[0] == string(value) {
		return prev[0]
	}
	return string(value)
}

// isToken: b is a header name as RFC 9110 allows one.
func isToken(b []byte) bool {
	for _, c := range b {
		if !(c < 0x80 && isTokenByte[c]) {
			return false
		}
	}
	return len(b) > 0
}

var isTokenByte = func() (t [0x80]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// isPlainValue: b holds only visible ASCII, spaces and tabs (no control
// bytes, nothing past ASCII: such a value goes to net/http).
func isPlainValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c >= 0x7f {
			return false
		}
	}
	return true
}

// digits is b as a decimal of at most 18 digits, or -1.
func digits(b []byte) int64 {
	if len(b) == 0 || len(b) > 18 {
		return -1
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int64(c-'0')
	}
	return n
}
