package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// For an operator without a PKI, GenerateCerts (mage deploy:certs) makes
// the files the inventory names: a CA and, for each host, a certificate
// for the names peers reach it at, signed by that CA. Keys are ECDSA
// P-256, written 0600 and never overwritten; the CA's key stays on the
// operator's machine (it is never uploaded). Rerunning it makes only what
// is missing, so adding a host to the inventory and rerunning gives that
// host a certificate and leaves the others alone.

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	hostValidity = 2 * 365 * 24 * time.Hour
)

// CAKeyFile is where GenerateCerts keeps the key of the CA in tlsCA:
// beside it, with the extension .key (tls/ca.crt: tls/ca.key).
func CAKeyFile(tlsCA string) string {
	return strings.TrimSuffix(tlsCA, filepath.Ext(tlsCA)) + ".key"
}

// signer is a CA that can sign host certificates.
type signer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// GenerateCerts creates what is missing of the CA and the hosts'
// certificates and keys, printing one line per file set. A host whose
// files exist but would not pass the deploy's check is reported, not
// overwritten: the operator removes them to have new ones made.
func (inv *Inventory) GenerateCerts(out io.Writer) error {
	if inv.TLSCA == "" {
		return fmt.Errorf("%w: no tls_ca: set it (e.g. \"tls/ca.crt\") and tls_cert/tls_key in defaults (e.g. \"tls/{name}.crt\", \"tls/{name}.key\"), then rerun", ErrInventory)
	}
	ca, made, err := loadOrCreateCA(inv.TLSCA)
	if err != nil {
		return err
	}
	if made {
		fmt.Fprintf(out, "made CA %s (its key: %s, keep it off the hosts)\n", inv.TLSCA, CAKeyFile(inv.TLSCA))
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	var errs []error
	for _, h := range inv.Hosts {
		if err := ensureHostCert(h, ca, pool, inv.TLSCA, out); err != nil {
			errs = append(errs, fmt.Errorf("host %q: %w", h.Name, err))
		}
	}
	return errors.Join(errs...)
}

// ensureHostCert makes h's certificate and key if both are missing, and
// checks them if both exist.
func ensureHostCert(h Host, ca signer, pool *x509.CertPool, caFile string, out io.Writer) error {
	certExists, keyExists := exists(h.TLSCert), exists(h.TLSKey)
	switch {
	case certExists && keyExists:
		if _, errs := checkHostTLS(h, pool, caFile); len(errs) > 0 {
			return fmt.Errorf("%w\n(remove %s and %s to have new ones made)", errors.Join(errs...), h.TLSCert, h.TLSKey)
		}
		fmt.Fprintf(out, "ok    %-12s %s unchanged\n", h.Name, h.TLSCert)
		return nil
	case certExists || keyExists:
		return fmt.Errorf("one of %s and %s exists without the other: remove it to have both made", h.TLSCert, h.TLSKey)
	}
	names := certNames(h)
	certPEM, keyPEM, err := ca.issue(names)
	if err != nil {
		return err
	}
	if err := writeNew(h.TLSKey, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeNew(h.TLSCert, certPEM, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "made  %-12s %s for %s\n", h.Name, h.TLSCert, strings.Join(names, ", "))
	return nil
}

// certNames are the names a host's certificate covers: those peers
// reach its roles at, and its address.
func certNames(h Host) []string {
	var names []string
	for _, r := range rolesOf(h) {
		names = append(names, h.ServerName(r))
	}
	names = append(names, h.Address)
	slices.Sort(names)
	return slices.Compact(names)
}

func loadOrCreateCA(certFile string) (signer, bool, error) {
	keyFile := CAKeyFile(certFile)
	if !exists(certFile) {
		if exists(keyFile) {
			return signer{}, false, fmt.Errorf("tls_ca %s is missing but its key %s exists: restore the certificate, or remove the key to have a new CA made", certFile, keyFile)
		}
		ca, certPEM, keyPEM, err := newCA()
		if err != nil {
			return signer{}, false, err
		}
		if err := writeNew(keyFile, keyPEM, 0o600); err != nil {
			return signer{}, false, err
		}
		return ca, true, writeNew(certFile, certPEM, 0o644)
	}
	_, certs, err := readCerts(certFile)
	if err != nil {
		return signer{}, false, fmt.Errorf("tls_ca: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return signer{}, false, fmt.Errorf("the key of tls_ca %s: %w (it signs new host certificates)", certFile, err)
	}
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return signer{}, false, fmt.Errorf("%s: no PEM key in it", keyFile)
	}
	key, err := x509.ParseECPrivateKey(b.Bytes)
	if err != nil {
		return signer{}, false, fmt.Errorf("%s: want the ECDSA key deploy:certs made: %w", keyFile, err)
	}
	if !key.PublicKey.Equal(certs[0].PublicKey) {
		return signer{}, false, fmt.Errorf("%s is not the key of %s", keyFile, certFile)
	}
	return signer{certs[0], key}, false, nil
}

// newCA makes a CA that can sign host certificates and nothing below them.
func newCA() (signer, []byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return signer{}, nil, nil, err
	}
	tmpl := template("twopc CA", caValidity)
	tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.MaxPathLenZero = true, true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return signer{}, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return signer{}, nil, nil, err
	}
	keyPEM, err := encodeKey(key)
	return signer{cert, key}, encodeCert(der), keyPEM, err
}

// issue makes a server certificate for names (IPs or DNS names).
func (ca signer) issue(names []string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := template("twopc "+names[0], hostValidity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKey(key)
	return encodeCert(der), keyPEM, err
}

func template(cn string, validity time.Duration) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour), // tolerate hosts whose clock is a little behind
		NotAfter:     now.Add(validity),
	}
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// writeNew creates path with mode (never replacing a file: a key must
// not be lost to a rerun), in a directory only the operator can enter.
func writeNew(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}
