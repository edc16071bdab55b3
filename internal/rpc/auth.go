package rpc

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Authentication is by shared secret: the caller presents a token in the
// Authorization header, either "Bearer <token>" or as the password of
// Basic auth (what Python's xmlrpc.client sends for a URL of the form
// http://user:token@host/). The server hands it to its authorizer with
// the method name before every call, multicall entries included.

// Secret is a token to check callers against. The zero Secret is unset.
type Secret struct {
	sum [sha256.Size]byte
	set bool
}

// NewSecret returns a Secret for token; an empty token gives an unset one.
func NewSecret(token string) Secret {
	if token == "" {
		return Secret{}
	}
	return Secret{sum: sha256.Sum256([]byte(token)), set: true}
}

// IsSet reports whether a token is configured.
func (s Secret) IsSet() bool { return s.set }

// Check reports whether presented is the token. It compares hashes in
// constant time, so neither the token nor its length leaks through timing.
func (s Secret) Check(presented string) bool { return s.Matches(Present(presented)) }

// Presented is the token a caller presented, hashed once however many
// secrets it is checked against (admission, then the authorizer, check
// it against up to two each). It keeps only the hash.
type Presented struct {
	sum [sha256.Size]byte
	set bool // a token was presented
}

// Present hashes token. No token is not hashed: an unset Presented
// matches no secret, and that an empty token is wrong is no secret.
func Present(token string) Presented {
	if token == "" {
		return Presented{}
	}
	return Presented{sum: sha256.Sum256([]byte(token)), set: true}
}

// Matches reports whether p is s's token, in constant time (see Check).
func (s Secret) Matches(p Presented) bool {
	return s.set && p.set && subtle.ConstantTimeCompare(p.sum[:], s.sum[:]) == 1
}

// Authorizer decides whether a caller that presented p may call method.
// A refusal should be a NotAuthorised fault that does not repeat the
// token.
type Authorizer func(method string, p Presented) error

// SetAuthorizer installs a; call it before serving.
func (s *Server) SetAuthorizer(a Authorizer) { s.authorize = a }

// RequireToken is an Authorizer that admits callers presenting secret to
// every method (any caller when secret is unset).
func RequireToken(secret Secret) Authorizer {
	return func(method string, p Presented) error {
		if !secret.IsSet() || secret.Matches(p) {
			return nil
		}
		return Faultf(NotAuthorised, "not authorised to call %s: missing or wrong token", clip(method, maxQuoted))
	}
}

// PresentedToken is the token a request presents in its Authorization
// header: "Bearer <token>", or the password of Basic auth (what a browser
// or Python sends for http://user:token@host/).
func PresentedToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if h == "" {
		return ""
	}
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		return tok
	}
	if _, pass, ok := r.BasicAuth(); ok {
		return pass
	}
	return ""
}

// NewHTTPClient returns the HTTP client a nil one stands for in NewClient.
func NewHTTPClient() *http.Client { return &http.Client{Transport: defaultTransport()} }

// WithToken returns an HTTP client like hc (nil: NewHTTPClient) that
// presents token as a Bearer token on every request; with an empty token,
// one that presents nothing.
func WithToken(hc *http.Client, token string) *http.Client {
	if hc == nil {
		hc = NewHTTPClient()
	}
	if token == "" {
		return hc
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c := *hc
	c.Transport = bearer{value: "Bearer " + token, base: base}
	return &c
}

type bearer struct {
	value string // the Authorization header's
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context()) // a RoundTripper must not modify its request
	r.Header.Set("Authorization", b.value)
	return b.base.RoundTrip(r)
}

func (b bearer) posts() bool { return posts(b.base) }

func (b bearer) post(o *outgoing) (*http.Response, error) {
	o.auth = b.value
	return b.base.(poster).post(o)
}
