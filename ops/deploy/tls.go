package deploy

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/twopc/twopc/internal/rpc"
)

// With tls_ca set, every host gets etc/ca.pem and etc/cert.pem (0644) and
// etc/key.pem (0600); both servers run with --tls-cert/--tls-key/--tls-ca,
// every URL is https, and the operator's tools (readiness, status, the
// drill and its proxies) check the services' certificates against the
// same CA. The files are checked on the operator's machine before any host
// is contacted: a certificate a peer would refuse is reported here, naming
// the host and the file, not found later in a participant's log.

// clusterTLS is the inventory's TLS material, read and checked once.
type clusterTLS struct {
	ca    []byte // the tls_ca file as read, uploaded as is
	pool  *x509.CertPool
	hosts map[string]hostTLS // by host name
}

type hostTLS struct{ cert, key []byte }

// checkTLSFields checks that TLS is on for every host or for none: a
// cluster where some URLs are https and others http cannot talk.
func (inv *Inventory) checkTLSFields() []error {
	var errs []error
	for _, h := range inv.Hosts {
		bad := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("host %q: %s", h.Name, fmt.Sprintf(format, a...)))
		}
		switch {
		case (h.TLSCert == "") != (h.TLSKey == ""):
			bad("tls_cert and tls_key go together (set both, on the host or in defaults)")
		case h.TLSCert != "" && inv.TLSCA == "":
			bad("tls_cert set but no tls_ca: set tls_ca to the CA the certificates chain to")
		case h.TLSCert == "" && inv.TLSCA != "":
			bad("tls_ca is set but the host has no tls_cert and tls_key (set them, e.g. in defaults as \"tls/{name}.crt\")")
		}
	}
	return errs
}

// loadTLS reads and checks the TLS files of every host; nil when the
// inventory does not turn TLS on. Every problem is reported at once.
func (inv *Inventory) loadTLS() (*clusterTLS, error) {
	if inv.TLSCA == "" {
		return nil, nil
	}
	ct := &clusterTLS{hosts: map[string]hostTLS{}}
	var errs []error
	ca, cas, err := readCerts(inv.TLSCA)
	if err != nil {
		errs = append(errs, fmt.Errorf("tls_ca: %w (go tool mage deploy:certs makes a CA and certificates; or remove tls_ca to deploy without TLS)", err))
	} else {
		ct.ca, ct.pool = ca, x509.NewCertPool()
		for _, c := range cas {
			ct.pool.AddCert(c)
		}
	}
	for _, h := range inv.Hosts {
		ht, herrs := checkHostTLS(h, ct.pool, inv.TLSCA)
		for _, e := range herrs {
			errs = append(errs, fmt.Errorf("host %q: %w", h.Name, e))
		}
		ct.hosts[h.Name] = ht
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInventory, errors.Join(errs...))
	}
	return ct, nil
}

// checkHostTLS checks what a peer of h will check (the chain to the CA,
// the names peers reach h at) and what h's server needs (a key that only
// its owner can read and that matches the certificate). pool is nil if the
// CA could not be read; the chain is then not checked.
func checkHostTLS(h Host, pool *x509.CertPool, caFile string) (hostTLS, []error) {
	var errs []error
	var ht hostTLS
	if fi, err := os.Stat(h.TLSKey); err != nil {
		errs = append(errs, fmt.Errorf("tls_key: %w", err))
	} else if fi.Mode().Perm()&0o077 != 0 {
		// The key's contents are never read into a message, only its mode.
		errs = append(errs, fmt.Errorf("tls_key %s is readable by group or others (mode %v): chmod 600 it", h.TLSKey, fi.Mode().Perm()))
	} else if ht.key, err = os.ReadFile(h.TLSKey); err != nil {
		errs = append(errs, fmt.Errorf("tls_key: %w", err))
	}
	cert, chain, err := readCerts(h.TLSCert)
	if err != nil {
		return ht, append(errs, fmt.Errorf("tls_cert: %w", err))
	}
	ht.cert = cert
	leaf := chain[0]
	// The validity period first: Verify reports it too, but as a failure
	// to chain, which would send the operator looking at the wrong thing.
	now := time.Now()
	switch {
	case now.After(leaf.NotAfter):
		errs = append(errs, fmt.Errorf("tls_cert %s expired on %s: renew it", h.TLSCert, leaf.NotAfter.Format(time.DateOnly)))
	case now.Before(leaf.NotBefore):
		errs = append(errs, fmt.Errorf("tls_cert %s is not valid before %s (is this machine's clock right?)", h.TLSCert, leaf.NotBefore.Format(time.RFC3339)))
	case pool != nil:
		inter := x509.NewCertPool()
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter}); err != nil {
			errs = append(errs, fmt.Errorf("tls_cert %s does not chain to tls_ca %s: %v", h.TLSCert, caFile, err))
		}
	}
	var names []string
	for _, r := range rolesOf(h) {
		if n := h.ServerName(r); !slices.Contains(names, n) {
			names = append(names, n)
			if err := leaf.VerifyHostname(n); err != nil {
				errs = append(errs, fmt.Errorf("tls_cert %s does not cover %s, where peers reach the %s (it names %s)", h.TLSCert, n, r, sans(leaf)))
			}
		}
	}
	if ht.key != nil {
		if _, err := tls.X509KeyPair(cert, ht.key); err != nil {
			errs = append(errs, fmt.Errorf("tls_key %s does not go with tls_cert %s: %v", h.TLSKey, h.TLSCert, err))
		}
	}
	return ht, errs
}

// readCerts reads a PEM file of certificates, first the leaf (or the CA).
// A private key in it is refused: the file is uploaded readable by all.
func readCerts(file string) ([]byte, []*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if strings.Contains(b.Type, "PRIVATE KEY") {
			return nil, nil, fmt.Errorf("%s holds a private key: keep keys in their own file (this one is installed readable by all)", file)
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: certificate %d: %w", file, len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, nil, fmt.Errorf("%s: no PEM certificate in it", file)
	}
	return data, certs, nil
}

// sans lists the names a certificate covers, for an error message.
func sans(c *x509.Certificate) string {
	var s []string
	s = append(s, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		s = append(s, ip.String())
	}
	if len(s) == 0 {
		return "no DNS or IP names"
	}
	return strings.Join(s, ", ")
}

// uploads are h's TLS files, by remote path; none without TLS.
func (ct *clusterTLS) uploads(h Host) map[string]upload {
	if ct == nil {
		return nil
	}
	ht := ct.hosts[h.Name]
	return map[string]upload{
		tlsCAPath(h):   {ct.ca, 0o644, "TLS files"},
		tlsCertPath(h): {ht.cert, 0o644, "TLS files"},
		tlsKeyPath(h):  {ht.key, 0o600, "TLS files"},
	}
}

// config is the client side of TLS for a call to a server that must
// prove it is serverName ("": the URL's host); nil without TLS.
func (ct *clusterTLS) config(serverName string) *tls.Config {
	if ct == nil {
		return nil
	}
	return &tls.Config{RootCAs: ct.pool, ServerName: serverName, MinVersion: tls.VersionTLS12}
}

// httpClient calls the services at their public URLs, trusting only the
// inventory's CA when TLS is on, and presents token (if any).
func (ct *clusterTLS) httpClient(token string) *http.Client {
	hc := rpc.NewHTTPClient()
	hc.Transport.(*http.Transport).TLSClientConfig = ct.config("")
	return rpc.WithToken(hc, token)
}
