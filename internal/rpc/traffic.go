package rpc

import (
	"io"
	"net/http"
	"sync/atomic"
)

// Traffic counts the XML bytes an HTTP client sends and receives (request
// and response bodies, not headers): what bytes-per-operation figures use.
type Traffic struct {
	base           http.RoundTripper
	sent, received atomic.Int64
}

// Metered returns a client like hc (nil: NewHTTPClient) that counts its
// traffic, and the counter.
func Metered(hc *http.Client) (*http.Client, *Traffic) {
	if hc == nil {
		hc = NewHTTPClient()
	}
	c := *hc
	t := &Traffic{base: c.Transport}
	if t.base == nil {
		t.base = http.DefaultTransport
	}
	c.Transport = t
	return &c, t
}

// Bytes returns the body bytes sent and received so far.
func (t *Traffic) Bytes() (sent, received int64) { return t.sent.Load(), t.received.Load() }

func (t *Traffic) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.ContentLength > 0 {
		t.sent.Add(r.ContentLength)
	}
	resp, err := t.base.RoundTrip(r)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &t.received}
	}
	return resp, err
}

func (t *Traffic) posts() bool { return posts(t.base) }

func (t *Traffic) post(o *outgoing) (*http.Response, error) {
	t.sent.Add(int64(len(o.body)))
	resp, err := t.base.(poster).post(o)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &t.received}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
