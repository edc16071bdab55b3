package deploy

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
)

// peerProxy serves on a loopback port of the operator's machine and
// forwards each request to one participant, through the SSH connection to
// its host, adding the peer token (and over https when the cluster runs
// TLS, checking the participant's certificate). The drill (which knows
// nothing of tokens, certificates or SSH) reads participants through it,
// and the token never appears in a URL it could print. The leg to the
// proxy stays plain http on the operator's loopback: it carries no token.
type peerProxy struct {
	ln  net.Listener
	srv *http.Server
	url string
}

func newPeerProxy(c *Conn, ct *clusterTLS, token string) (*peerProxy, error) {
	target, err := url.Parse(c.Host.LocalURL(RoleParticipant))
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy for %s: %w", c.Host.Name, err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.URL.Path, r.Out.URL.RawPath = target.Path, ""
			r.Out.Header.Del("Authorization") // only the token we add
		},
		Transport: c.roleClient(RoleParticipant, ct, token).Transport,
		// A participant that is down shows as a 502 to the caller; the
		// proxy has nothing to add on its own output.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	p := &peerProxy{ln: ln, srv: &http.Server{Handler: rp}, url: "http://" + ln.Addr().String() + "/RPC2"}
	go func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			ln.Close()
		}
	}()
	return p, nil
}

func (p *peerProxy) Close() error { return p.srv.Close() }
