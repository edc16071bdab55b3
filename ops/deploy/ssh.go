package deploy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/twopc/twopc/internal/rpc"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Bounds on SSH waits: a host that does not answer is reported, not waited
// for forever.
const (
	dialTimeout      = 10 * time.Second
	handshakeTimeout = 15 * time.Second
)

// ErrHostKey marks a host key that is unknown, changed or revoked: the
// connection was refused before anything was sent to the host.
var ErrHostKey = errors.New("host key")

// Conn is an SSH connection to one inventory host.
type Conn struct {
	Host   Host
	client *ssh.Client
}

// Dial connects to h, verifying its host key against knownHosts and
// authenticating with h.Key and/or the SSH agent ($SSH_AUTH_SOCK).
func Dial(ctx context.Context, h Host, knownHosts string) (*Conn, error) {
	check, err := knownhosts.New(knownHosts)
	if err != nil {
		return nil, fmt.Errorf("%w: known_hosts %s: %v (create it, e.g. ssh-keyscan -p %d %s >> %s, after checking the fingerprints)",
			ErrHostKey, knownHosts, err, h.Port, h.Address, knownHosts)
	}
	auth, closeAgent, err := authMethod(h)
	if err != nil {
		return nil, err
	}
	defer closeAgent()
	cfg := &ssh.ClientConfig{
		User:              h.User,
		Auth:              []ssh.AuthMethod{auth},
		HostKeyCallback:   hostKeyCheck(h, knownHosts, check),
		HostKeyAlgorithms: knownAlgorithms(check, h.SSHAddr()),
		Timeout:           dialTimeout,
	}
	d := net.Dialer{Timeout: dialTimeout}
	nc, err := d.DialContext(ctx, "tcp", h.SSHAddr())
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", h.SSHAddr(), err)
	}
	// The handshake has its own bound: a port that accepts but never
	// speaks SSH must not hang the deploy.
	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	c, chans, reqs, err := ssh.NewClientConn(nc, h.SSHAddr(), cfg)
	if err != nil {
		nc.Close()
		var ke *hostKeyError
		if errors.As(err, &ke) {
			return nil, ke
		}
		if strings.Contains(err.Error(), "no common algorithm for host key") {
			return nil, fmt.Errorf("%w: host %s: known_hosts has keys of types %v for %s, and the server offers none of them; check its keys on the host, then add them (ssh-keyscan -p %d %s >> %s)",
				ErrHostKey, h.Name, cfg.HostKeyAlgorithms, knownhosts.Normalize(h.SSHAddr()), h.Port, h.Address, knownHosts)
		}
		return nil, fmt.Errorf("ssh %s@%s: %w", h.User, h.SSHAddr(), err)
	}
	nc.SetDeadline(time.Time{})
	return &Conn{Host: h, client: ssh.NewClient(c, chans, reqs)}, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.client.Close() }

// authMethod offers the key file's signer first, then the agent's: one
// publickey method holding both, because the ssh package tries each method
// name only once.
func authMethod(h Host) (ssh.AuthMethod, func(), error) {
	var signers []ssh.Signer
	if h.Key != KeyAgent {
		pem, err := os.ReadFile(h.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("ssh key for %s: %w", h.Name, err)
		}
		s, err := ssh.ParsePrivateKey(pem)
		var pm *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &pm):
			// The passphrase is the agent's business, never ours.
			if os.Getenv("SSH_AUTH_SOCK") == "" {
				return nil, nil, fmt.Errorf("ssh key %s is passphrase-protected: load it with ssh-add and run with SSH_AUTH_SOCK set", h.Key)
			}
		case err != nil:
			return nil, nil, fmt.Errorf("ssh key %s: %w", h.Key, err)
		default:
			signers = append(signers, s)
		}
	}
	closeAgent := func() {}
	var ag agent.ExtendedAgent
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if c, err := net.DialTimeout("unix", sock, dialTimeout); err == nil {
			ag, closeAgent = agent.NewClient(c), func() { c.Close() }
		}
	}
	if len(signers) == 0 && ag == nil {
		closeAgent()
		return nil, nil, fmt.Errorf("host %s: no SSH key: set key in the inventory or run an ssh-agent (SSH_AUTH_SOCK)", h.Name)
	}
	return ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
		out := signers
		if ag != nil {
			if more, err := ag.Signers(); err == nil {
				out = append(append([]ssh.Signer(nil), signers...), more...)
			}
		}
		return out, nil
	}), closeAgent, nil
}

// knownAlgorithms limits the host key algorithms offered to those of the
// keys known_hosts holds for addr, so that a server with several keys
// shows the one we can check (else it may show an unknown one and fail).
// Nil (any algorithm) when addr is unknown: the check then reports it.
func knownAlgorithms(check ssh.HostKeyCallback, addr string) []string {
	tcp, _ := net.ResolveTCPAddr("tcp", addr)
	if tcp == nil {
		tcp = &net.TCPAddr{}
	}
	err := check(addr, tcp, probeKey{})
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return nil
	}
	var algos []string
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			algos = append(algos, t)
		}
	}
	return algos
}

// probeKey is a key no host has, to learn which keys known_hosts expects.
type probeKey struct{}

func (probeKey) Type() string                        { return "twopc-probe" }
func (probeKey) Marshal() []byte                     { return []byte("twopc-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe") }

// hostKeyError says what the operator must check and how to fix it.
type hostKeyError struct{ msg string }

func (e *hostKeyError) Error() string { return e.msg }
func (e *hostKeyError) Unwrap() error { return ErrHostKey }

func hostKeyCheck(h Host, file string, check ssh.HostKeyCallback) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := check(hostname, remote, key)
		if err == nil {
			return nil
		}
		fp := key.Type() + " " + ssh.FingerprintSHA256(key)
		name := knownhosts.Normalize(h.SSHAddr())
		add := fmt.Sprintf("ssh-keyscan -p %d -t %s %s >> %s", h.Port, strings.TrimPrefix(key.Type(), "ssh-"), h.Address, file)
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case errors.As(err, &re):
			return &hostKeyError{fmt.Sprintf("host %s (%s): host key %s is REVOKED in %s; refusing to connect", h.Name, name, fp, re.Revoked.String())}
		case errors.As(err, &ke) && len(ke.Want) == 0:
			return &hostKeyError{fmt.Sprintf("host %s (%s): host key is UNKNOWN (not in %s); the server offers %s.\n"+
				"  Fix: check that fingerprint on the host itself (ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub), then add it:\n  %s",
				h.Name, name, file, fp, strings.TrimPrefix(key.Type(), "ssh-"), add)}
		case errors.As(err, &ke):
			var want []string
			for _, k := range ke.Want {
				want = append(want, fmt.Sprintf("%s:%d %s", k.Filename, k.Line, ssh.FingerprintSHA256(k.Key)))
			}
			return &hostKeyError{fmt.Sprintf("host %s (%s): host key CHANGED: the server offers %s, known_hosts has %s.\n"+
				"  This may be a man-in-the-middle attack. If the host was reinstalled, and only after checking the new fingerprint on it:\n"+
				"  ssh-keygen -R '%s' -f %s && %s",
				h.Name, name, fp, strings.Join(want, ", "), name, file, add)}
		}
		return &hostKeyError{fmt.Sprintf("host %s (%s): host key check: %v", h.Name, name, err)}
	}
}

// Result is the output of one remote command.
type Result struct {
	Stdout, Stderr []byte
}

// Run runs a shell command on the host, feeding it stdin (may be nil). A
// non-zero exit is an error carrying the command's stderr. ctx bounds it.
func (c *Conn) Run(ctx context.Context, cmd string, stdin io.Reader) (Result, error) {
	s, err := c.client.NewSession()
	if err != nil {
		return Result{}, fmt.Errorf("%s: ssh session: %w", c.Host.Name, err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr, s.Stdin = &out, &errb, stdin
	done := make(chan error, 1)
	go func() { done <- s.Run(cmd) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		s.Signal(ssh.SIGKILL)
		s.Close()
		<-done
		err = ctx.Err()
	}
	res := Result{Stdout: out.Bytes(), Stderr: errb.Bytes()}
	if err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = strings.TrimSpace(out.String())
		}
		if msg != "" {
			return res, fmt.Errorf("%w: %s", err, msg)
		}
		return res, err
	}
	return res, nil
}

// HTTPClient returns an HTTP client whose connections go through this SSH
// connection, as if made on the host: the operator reaches the services
// without opening their ports to the world. tc is the TLS configuration
// for https URLs (nil without TLS).
func (c *Conn) HTTPClient(tc *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return c.client.DialContext(ctx, "tcp", addr)
		},
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: handshakeTimeout,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}}
}

// roleClient calls role on c's host at its LocalURL through the SSH
// connection, presenting token. Over TLS it checks the certificate
// against the name peers reach role at, as they do, since the local
// address (127.0.0.1 for a 0.0.0.0 listen) may not be in it.
func (c *Conn) roleClient(role string, ct *clusterTLS, token string) *http.Client {
	return rpc.WithToken(c.HTTPClient(ct.config(c.Host.ServerName(role))), token)
}
