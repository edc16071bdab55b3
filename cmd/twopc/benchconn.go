package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/twopc/twopc/internal/rpc"
)

// directTransport carries the load generator's calls: each call is
// written and its reply read in the caller's goroutine, on a kept-alive
// connection taken from a pool. net/http's Transport hands every call to
// two goroutines of the connection (one writes, one reads); on a machine
// the load generator shares with the servers, those hand-offs cost CPU
// the servers would use. Request and reply are still net/http's own
// (Request.Write, ReadResponse). Unlike net/http's Transport it does not
// resend a call on a kept-alive connection that the server closed
// meanwhile: that fits a load generator, whose connections are never idle
// for long, and nothing else.
type directTransport struct {
	tls  *tls.Config // for https URLs; nil: the system's roots
	mu   sync.Mutex
	idle []*directConn
}

type directConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

func (t *directTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	dc, err := t.get(req.Context(), req.URL)
	if err != nil {
		return nil, err
	}
	// A call past its deadline, or cancelled, unblocks at once.
	stop := context.AfterFunc(req.Context(), func() { _ = dc.c.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, error) {
		stop()
		dc.c.Close()
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
	if err := req.Write(dc.bw); err != nil {
		return fail(err)
	}
	if err := dc.bw.Flush(); err != nil {
		return fail(err)
	}
	resp, err := http.ReadResponse(dc.br, req)
	if err != nil {
		return fail(err)
	}
	resp.Body = &directBody{ReadCloser: resp.Body, t: t, dc: dc, stop: stop, close: resp.Close}
	return resp, nil
}

func (t *directTransport) get(ctx context.Context, u *url.URL) (*directConn, error) {
	t.mu.Lock()
	if n := len(t.idle); n > 0 {
		dc := t.idle[n-1]
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		return dc, nil
	}
	t.mu.Unlock()
	c, err := rpc.Dial(ctx, u, t.tls, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &directConn{c: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c)}, nil
}

// directBody gives the connection back once the reply is read to its
// end, and closes it otherwise.
type directBody struct {
	io.ReadCloser
	t     *directTransport
	dc    *directConn
	stop  func() bool
	close bool // the server said Connection: close
	eof   bool
}

func (b *directBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.eof = true
	}
	return n, err
}

func (b *directBody) Close() error {
	err := b.ReadCloser.Close()
	if !b.stop() || !b.eof || b.close || err != nil {
		b.dc.c.Close() // the deadline fired, or the reply was not read whole
		return err
	}
	b.t.mu.Lock()
	b.t.idle = append(b.t.idle, b.dc)
	b.t.mu.Unlock()
	return nil
}
