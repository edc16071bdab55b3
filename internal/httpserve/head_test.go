package httpserve

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"reflect"
	"testing"
)

// headSeeds are calls as clients send them, and near misses.
var headSeeds = []string{
	post("/RPC2", "<x/>"),
	"POST / HTTP/1.1\r\nHost: a:1\r\nUser-Agent: Python-xmlrpc/3.11\r\nContent-Type: text/xml\r\nAccept-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
	"POST /RPC2 HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nX-Odd_Name: 1\r\nauthorization: Bearer t\r\n\r\nab",
	"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length:  7 \r\n\r\nshort",
	"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
	"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
	"POST /RPC2 HTTP/1.1\r\nHost: x\r\nHost: y\r\nContent-Length: 1\r\n\r\nx",
	"POST /RPC2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
	"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n folded\r\n\r\nx",
	"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nBad Name: 1\r\n\r\nx",
	"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\nx",
	"POST /RPC2 HTTP/1.1\r\nHost: x\r\nX: \x01\r\nContent-Length: 1\r\n\r\nx",
	"POST /RPC2 HTTP/1.1\nHost: x\nContent-Length: 1\n\nx",
	"POST /RPC2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
	"POST /RPC2 HTTP/1.1\r\nHost: x\r\nPragma: no-cache\r\nContent-Length: 1\r\n\r\nx",
	"POST /RPC2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 1\r\n\r\nx",
	"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 007\r\n\r\n1234567",
	"POST /RPC2 HTTP/1.1\r\nHost:\r\nContent-Length: 1\r\n\r\nx",
	"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nX: caf\xc3\xa9\r\n\r\nx",
}

// readHead, where it reads a request at all, reads what net/http's
// ReadRequest reads: the same request, the same body, and the same bytes
// left after it; with the values of a call before it to reuse, too.
func FuzzReadHead(f *testing.F) {
	for _, seed := range headSeeds {
		f.Add([]byte(seed))
	}
	s := &Server{Paths: []string{"/RPC2", "/"}}
	for _, p := range s.Paths {
		s.lines = append(s.lines, []byte("POST "+p+" HTTP/1.1\r\n"))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, prev := range []*http.Request{nil, {Host: "x", Header: http.Header{"User-Agent": {"Python-xmlrpc/3.11"}, "Content-Length": {"1"}}}} {
			br := bufio.NewReaderSize(bytes.NewReader(raw), 4096)
			_, _ = br.Peek(min(len(raw), 4096))
			got, ok := s.readHead(br, prev)
			if !ok {
				if br.Buffered() != min(len(raw), 4096) {
					t.Fatal("readHead refused the request after reading some of it")
				}
				continue
			}
			wr := bufio.NewReader(bytes.NewReader(raw))
			want, err := http.ReadRequest(wr)
			if err != nil {
				t.Fatalf("readHead read a request ReadRequest refuses (%v):\n%q", err, raw)
			}
			gotBody, gotErr := io.ReadAll(got.Body)
			wantBody, wantErr := io.ReadAll(want.Body)
			gotRest, _ := io.ReadAll(br)
			wantRest, _ := io.ReadAll(wr)
			got.Body, want.Body = nil, nil
			switch {
			case !reflect.DeepEqual(got, want):
				t.Fatalf("%q:\nreadHead    %+v\nReadRequest %+v", raw, got, want)
			case !bytes.Equal(gotBody, wantBody) || (gotErr == nil) != (wantErr == nil):
				t.Fatalf("%q: body %q (%v), ReadRequest's %q (%v)", raw, gotBody, gotErr, wantBody, wantErr)
			case !bytes.Equal(gotRest, wantRest):
				t.Fatalf("%q: left %q after the body, ReadRequest %q", raw, gotRest, wantRest)
			}
		}
	})
}

// The calls of every client this repository has met are read here.
func TestReadHeadReadsUsualCalls(t *testing.T) {
	s := &Server{Paths: []string{"/RPC2", "/"}}
	for _, p := range s.Paths {
		s.lines = append(s.lines, []byte("POST "+p+" HTTP/1.1\r\n"))
	}
	for _, raw := range headSeeds[:5] {
		br := bufio.NewReader(bytes.NewReader([]byte(raw)))
		_, _ = br.Peek(len(raw))
		if _, ok := s.readHead(br, nil); !ok {
			t.Errorf("not read here: %q", raw)
		}
	}
}
