package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/internal/secret"
)

// Secrets come from files or the environment, never from arguments (which
// any local user can read in ps) and never into logs.
const (
	envPeerToken   = "TWOPC_PEER_TOKEN"   // coordinator <-> participants
	envClientToken = "TWOPC_CLIENT_TOKEN" // clients -> coordinator
)

// security holds the TLS and token flags the servers share.
type security struct {
	tlsCert, tlsKey, tlsCA string
	peerTokenFile          string
	insecure               bool
	readTimeout            time.Duration
	idleTimeout            time.Duration
}

func securityFlags(fs *flag.FlagSet) *security {
	s := &security{}
	fs.StringVar(&s.tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM file); needs --tls-key")
	fs.StringVar(&s.tlsKey, "tls-key", "", "private key of --tls-cert (PEM file)")
	fs.StringVar(&s.tlsCA, "tls-ca", "", "CA certificates (PEM file) that peers' HTTPS certificates must chain to; default: the system's")
	fs.StringVar(&s.peerTokenFile, "peer-token-file", "", "file holding the token shared by the coordinator and its participants (or set "+envPeerToken+")")
	fs.BoolVar(&s.insecure, "insecure", false, "allow serving beyond loopback without a peer token (anyone who reaches the port could then write)")
	fs.DurationVar(&s.readTimeout, "read-timeout", 30*time.Second, "longest time a client may take to send one request (headers: at most 5s)")
	fs.DurationVar(&s.idleTimeout, "idle-timeout", 2*time.Minute, "close a kept-alive connection idle this long")
	return s
}

// setup checks the security flags of a server that will listen on addr,
// before anything is opened, and returns the peer token ("" if none) and
// the HTTP client for calls to peers (which presents the token).
func (s *security) setup(addr string) (peerToken string, hc *http.Client, err error) {
	if peerToken, err = s.peerToken(); err != nil {
		return "", nil, err
	}
	if _, _, err = s.tlsFiles(); err != nil {
		return "", nil, err
	}
	if err = s.checkExposure(addr, peerToken); err != nil {
		return "", nil, err
	}
	hc, err = s.httpClient(peerToken)
	return peerToken, hc, err
}

// peerToken loads the shared token; "" when none is configured.
func (s *security) peerToken() (string, error) {
	return loadSecret(s.peerTokenFile, envPeerToken)
}

// checkExposure refuses to serve an unauthenticated endpoint beyond
// loopback: security by default, with an explicit way out.
func (s *security) checkExposure(listen string, peerToken string) error {
	if peerToken != "" || s.insecure || isLoopback(listen) {
		return nil
	}
	return fmt.Errorf("refusing to listen on %s without a peer token: anyone who can reach it could "+
		"change data. Put one token in a file on the coordinator and every participant and pass "+
		"--peer-token-file (or set %s), or pass --insecure", listen, envPeerToken)
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// httpClient returns the client used to call peers: it trusts --tls-ca
// and presents token, if any.
func (s *security) httpClient(token string) (*http.Client, error) {
	t := &http.Transport{
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 5 * time.Second,
	}
	var err error
	if t.TLSClientConfig, err = s.clientTLS(); err != nil {
		return nil, err
	}
	return rpc.WithToken(&http.Client{Transport: t}, token), nil
}

// callClient returns the client a coordinator calls its participants
// with: over streams (rpc.StreamTransport, see internal/rpc/stream.go),
// presenting token; a participant that does not take streams is called
// as any peer is.
func (s *security) callClient(token string) (*http.Client, error) {
	plain, err := s.httpClient("")
	if err != nil {
		return nil, err
	}
	tc, err := s.clientTLS()
	if err != nil {
		return nil, err
	}
	return rpc.WithToken(&http.Client{Transport: rpc.NewStreamTransport(tc, plain.Transport)}, token), nil
}

// clientTLS is the TLS configuration of calls that trust --tls-ca; nil
// without one (the system's roots, for https URLs).
func (s *security) clientTLS() (*tls.Config, error) {
	if s.tlsCA == "" {
		return nil, nil
	}
	pool, err := loadCA(s.tlsCA)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// tlsFiles checks that --tls-cert and --tls-key come together.
func (s *security) tlsFiles() (cert, key string, err error) {
	if (s.tlsCert == "") != (s.tlsKey == "") {
		return "", "", errors.New("--tls-cert and --tls-key go together")
	}
	return s.tlsCert, s.tlsKey, nil
}

func loadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificates in it", path)
	}
	return pool, nil
}

// loadSecret reads a token from file, else from the environment
// variable env; see package secret.
func loadSecret(file, env string) (string, error) { return secret.Load(file, env) }

// logAuth says which protections are on, without the secrets.
func logAuth(log *slog.Logger, peer, client bool, tlsOn bool) {
	log.Info("security", "peer_token", peer, "client_token", client, "tls", tlsOn)
}
