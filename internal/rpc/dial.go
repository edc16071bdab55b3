package rpc

import (
	"context"
	"crypto/tls"
	"net"
	"net/url"
	"time"
)

// Dial opens a connection to u's host for HTTP/1.1 (the clients that
// write and read on their own connections: streams, and the load
// generator's): over TLS with tlsConfig for https (nil: the system's
// roots), within timeout and ctx.
func Dial(ctx context.Context, u *url.URL, tlsConfig *tls.Config, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout) // the TLS handshake too
	defer cancel()
	port := u.Port()
	if port == "" {
		port = map[bool]string{true: "443", false: "80"}[u.Scheme == "https"]
	}
	d := net.Dialer{KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil || u.Scheme != "https" {
		return c, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if tlsConfig != nil {
		cfg = tlsConfig.Clone()
	}
	cfg.ServerName = u.Hostname()
	cfg.NextProtos = nil // HTTP/1.1, which has upgrades
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}
