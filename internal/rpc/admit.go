package rpc

import (
	"net/http"
	"strconv"
)

// Admission happens before a byte of the body is read, from the headers
// alone, so that a request that will be refused costs the server a small,
// fixed amount of memory whatever it sends: the token is checked, and a
// declared Content-Length over the caller's body limit is refused (which
// also means that "Expect: 100-continue" is never answered "100 Continue"
// for such a body, since net/http sends it only once the body is read).
// The method name is inside the body, so what depends on it (which token
// a method needs) is the Authorizer's job, after decoding.

// A Credential admits the callers that present its secret (every caller,
// if the secret is unset), with bodies of up to MaxBodyBytes (zero: the
// server's Limits.MaxBodyBytes).
type Credential struct {
	Secret       Secret
	MaxBodyBytes int64
}

// SetCredentials makes the server admit only requests that present one
// of creds' secrets, each with the largest body limit of the credentials
// it satisfies; any other request gets a NotAuthorised fault before its
// body is read. Without credentials every request is admitted with the
// server's limit. Call it before serving.
func (s *Server) SetCredentials(creds ...Credential) { s.creds = creds }

// admit returns the body limit of the caller that presented p, or a
// fault if it may not send one.
func (s *Server) admit(p Presented) (int64, *Fault) {
	if len(s.creds) == 0 {
		return s.lim.MaxBodyBytes, nil
	}
	var limit int64
	admitted := false
	for _, c := range s.creds {
		if c.Secret.IsSet() && !c.Secret.Matches(p) {
			continue
		}
		admitted = true
		l := c.MaxBodyBytes
		if l <= 0 || l > s.lim.MaxBodyBytes {
			l = s.lim.MaxBodyBytes
		}
		limit = max(limit, l)
	}
	if !admitted {
		return 0, Faultf(NotAuthorised, "not authorised: missing or wrong token")
	}
	return limit, nil
}

// admitRequest checks r's token (p) and declared length. On a fault,
// the caller answers it and must not read the body.
func (s *Server) admitRequest(r *http.Request, p Presented) (maxBody int64, f *Fault) {
	maxBody, f = s.admit(p)
	if f != nil {
		return 0, f
	}
	if r.ContentLength > maxBody {
		return 0, Faultf(TooLarge, "request body exceeds %d bytes (Content-Length: %s)", maxBody, strconv.FormatInt(r.ContentLength, 10))
	}
	return maxBody, nil
}
