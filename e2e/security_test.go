package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/ops/drill"
	"github.com/twopc/twopc/ops/launch"
)

// pki writes a CA and a certificate for 127.0.0.1 signed by it.
func pki(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "twopc test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	caCert, _ := x509.ParseCertificate(caDER)
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	write := func(name, typ string, der []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER, 0o644), write("cert.pem", "CERTIFICATE", der, 0o644),
		write("key.pem", "EC PRIVATE KEY", keyDER, 0o600)
}

func secretFile(t *testing.T, dir, name, token string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A cluster with TLS everywhere, a peer token and a client token: clients
// and participants get in only with the right credentials, and a refused
// call changes nothing.
func TestSecureCluster(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := pki(t, dir)
	secretFile(t, dir, "peer.token", "peer-secret-1") // the cluster's, in its folder
	client := secretFile(t, dir, "client.token", "client-secret-2")
	cl := newCluster(t, func(c *launch.Config) {
		c.Dir, c.ClientTokenFile = dir, client
		c.TLS = &launch.TLS{CA: caFile, Cert: certFile, Key: keyFile}
	})
	coordURL, purls := cl.CoordinatorURL(), cl.ParticipantURLs()
	if !strings.HasPrefix(coordURL, "https://") {
		t.Fatalf("coordinator at %s, want https", coordURL)
	}

	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(caFile)
	pool.AppendCertsFromPEM(caPEM)
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	good := rpc.NewClient(coordURL, rpc.WithToken(tlsClient, "client-secret-2"))
	ctx := context.Background()
	if _, err := good.Call(ctx, "put", "k", "v"); err != nil {
		t.Fatalf("put with the client token over TLS: %v", err)
	}
	checkHTTPSurface(t, tlsClient, coordURL, purls)

	notAuthorised := func(what string, err error) {
		t.Helper()
		var f *rpc.Fault
		if !errors.As(err, &f) || f.Code != rpc.NotAuthorised {
			t.Fatalf("%s: %v, want fault %d", what, err, rpc.NotAuthorised)
		}
		for _, secret := range []string{"peer-secret-1", "client-secret-2"} {
			if strings.Contains(f.Message, secret) {
				t.Fatalf("%s: fault shows a secret: %q", what, f.Message)
			}
		}
	}
	_, err := rpc.NewClient(coordURL, tlsClient).Call(ctx, "put", "k", "evil")
	notAuthorised("put without the client token", err)
	_, err = rpc.NewClient(coordURL, rpc.WithToken(tlsClient, "peer-secret-1")).Call(ctx, "put", "k", "evil")
	notAuthorised("put with the peer token instead of the client token", err)
	_, err = rpc.NewClient(coordURL, rpc.WithToken(tlsClient, "client-secret-2")).Call(ctx, "tx.outcome", "1.1")
	notAuthorised("tx.outcome with a client token", err)

	prepare := []any{[]any{"prepare", "9.9", "k", "put", "evil"}}
	for _, u := range purls {
		_, err := rpc.NewClient(u, tlsClient).Call(ctx, "batch", prepare)
		notAuthorised("participant batch without credentials", err)
		_, err = rpc.NewClient(u, rpc.WithToken(tlsClient, "wrong")).Call(ctx, "batch", prepare)
		notAuthorised("participant batch with a wrong token", err)
		plain := strings.Replace(u, "https://", "http://", 1)
		if _, err := rpc.NewClient(plain, rpc.WithToken(nil, "peer-secret-1")).Call(ctx, "batch", prepare); err == nil {
			t.Fatal("plain HTTP to a TLS participant was answered")
		}
	}
	// Nothing the refused calls sent took effect anywhere. The put was
	// acknowledged before its commit reached the participants (parallel
	// commits), so wait for the cluster to settle before reading them.
	peerClient := rpc.WithToken(tlsClient, "peer-secret-1")
	probe := drill.Probe{Cluster: cl, CoordinatorHTTP: cl.ClientHTTP(), ParticipantHTTP: cl.PeerHTTP()}
	if err := probe.Settle(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, u := range purls {
		res, err := rpc.NewClient(u, peerClient).Call(ctx, "read", "k")
		if err != nil {
			t.Fatal(err)
		}
		if m := res.(map[string]any); m["value"] != "v" || m["pending"] != "" {
			t.Fatalf("%s after refused calls: %v", u, m)
		}
	}
	if v, err := good.Call(ctx, "get", "k"); err != nil || v != "v" {
		t.Fatalf("get: %v %v", v, err)
	}
	// Python's reference client: HTTPS with the CA, token in the URL.
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is required: ", err)
	}
	script := `
import ssl, sys, xmlrpc.client as x
ctx = ssl.create_default_context(cafile=sys.argv[1])
url = sys.argv[2]
ok = x.ServerProxy(url.replace("https://", "https://client:client-secret-2@"), context=ctx)
assert ok.get("k") == "v", "get with the token"
try:
    x.ServerProxy(url, context=ctx).get("k")
    sys.exit("get without the token succeeded")
except x.Fault as f:
    assert f.faultCode == 5, f
`
	if out, err := exec.Command(python, "-c", script, caFile, coordURL).CombinedOutput(); err != nil {
		t.Fatalf("python over TLS with a token: %v %s", err, out)
	}

	// The secrets never reach the logs.
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if bytes.Contains(b, []byte("peer-secret-1")) || bytes.Contains(b, []byte("client-secret-2")) {
			t.Fatalf("%s contains a secret", l)
		}
	}
}

// Servers refuse unsafe set-ups before serving anything.
func TestRefusesUnsafeSetup(t *testing.T) {
	dir := t.TempDir()
	loose := filepath.Join(dir, "loose.token")
	os.WriteFile(loose, []byte("x\n"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"participant on all interfaces without a token",
			[]string{"participant", "--listen", "0.0.0.0:0", "--db", filepath.Join(dir, "a.db")}, "refusing to listen"},
		{"coordinator on all interfaces without a token",
			[]string{"coordinator", "--listen", "0.0.0.0:0", "--log", filepath.Join(dir, "c.txlog")}, "refusing to listen"},
		{"token file readable by others",
			[]string{"participant", "--listen", "127.0.0.1:0", "--db", filepath.Join(dir, "b.db"), "--peer-token-file", loose}, "readable by others"},
		{"certificate without key",
			[]string{"participant", "--listen", "127.0.0.1:0", "--db", filepath.Join(dir, "c.db"), "--tls-cert", loose}, "go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(binary, tc.args...).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit %v, output %q; want a failure saying %q", err, out, tc.want)
			}
		})
	}
}
