package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twopc/twopc/internal/rpc"
)

// echoServer answers "echo" with its argument and counts the connections
// it accepted.
func echoServer(t *testing.T, tlsOn bool, h func(w http.ResponseWriter, r *http.Request) bool) (*httptest.Server, *atomic.Int64) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h != nil && !h(w, r) {
			return
		}
		_, params, err := rpc.DecodeCall(r.Body, rpc.DefaultLimits())
		if err != nil || len(params) != 1 {
			t.Errorf("server: %v %v", params, err)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		_ = rpc.EncodeResponse(w, params[0])
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	if tlsOn {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, &conns
}

func echo(t *testing.T, c *rpc.Client, ctx context.Context, s string) error {
	t.Helper()
	v, err := c.Call(ctx, "echo", s)
	if err == nil && v != s {
		t.Fatalf("echo %q = %v", s, v)
	}
	return err
}

// Calls one after another share one connection, over plain HTTP and
// over TLS (trusting the server's certificate only through the config
// given).
func TestDirectTransportReusesItsConnection(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		srv, conns := echoServer(t, tlsOn, nil)
		tr := &directTransport{}
		if tlsOn {
			tr.tls = &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
		}
		c := rpc.NewClient(srv.URL+"/RPC2", &http.Client{Transport: tr})
		for i := range 50 {
			if err := echo(t, c, context.Background(), fmt.Sprint("call ", i)); err != nil {
				t.Fatalf("tls %v: call %d: %v", tlsOn, i, err)
			}
		}
		if n := conns.Load(); n != 1 {
			t.Errorf("tls %v: 50 calls opened %d connections, want 1", tlsOn, n)
		}
	}
}

// A client not given the server's CA refuses its certificate.
func TestDirectTransportVerifiesTheCertificate(t *testing.T) {
	srv, _ := echoServer(t, true, nil)
	c := rpc.NewClient(srv.URL+"/RPC2", &http.Client{Transport: &directTransport{}})
	err := echo(t, c, context.Background(), "x")
	var unknown x509.UnknownAuthorityError
	if err == nil || !errors.As(err, &unknown) {
		t.Fatalf("call to a server whose CA is not trusted: %v, want an unknown-authority error", err)
	}
}

// A call whose server does not answer ends with its context, and the
// connection it held is not used again: the next call gets the next
// reply, not the late one.
func TestDirectTransportEndsWithTheContext(t *testing.T) {
	release := make(chan struct{})
	var first atomic.Bool
	srv, conns := echoServer(t, false, func(w http.ResponseWriter, r *http.Request) bool {
		if first.CompareAndSwap(false, true) {
			<-release // hold the first call until the test ends
		}
		return true
	})
	defer close(release)
	c := rpc.NewClient(srv.URL+"/RPC2", &http.Client{Transport: &directTransport{}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := echo(t, c, ctx, "held"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call the server holds: %v, want the context's deadline", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	if err := echo(t, c, ctx2, "next"); err != nil {
		t.Fatalf("the call after: %v", err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2: the held one must not be reused", n)
	}
}

// A server that closes the connection after its reply gets a new one
// for the next call.
func TestDirectTransportFollowsConnectionClose(t *testing.T) {
	srv, conns := echoServer(t, false, func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Connection", "close")
		return true
	})
	c := rpc.NewClient(srv.URL+"/RPC2", &http.Client{Transport: &directTransport{}})
	for i := range 3 {
		if err := echo(t, c, context.Background(), fmt.Sprint(i)); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections for 3 calls to a server that closes each, want 3", n)
	}
}
