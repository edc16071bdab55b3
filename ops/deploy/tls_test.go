package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twopc/twopc/internal/rpc"
)

// checkTLS: after a TLS deploy, each host holds its own certificate and
// key and the CA, with the modes the deploy promises (seen over SSH);
// the servers run with them and every URL they are given is https; no
// key material was printed; the services answer neither plain http nor a
// client that does not trust the CA; and a key whose mode was loosened on
// a host is put back by the next deploy.
func (e *testEnv) checkTLS(ctx context.Context, deployOutput string) {
	t := e.t
	t.Helper()
	ca, _ := os.ReadFile(e.inv.TLSCA)
	for _, h := range e.inv.Hosts {
		cert, _ := os.ReadFile(h.TLSCert)
		key, _ := os.ReadFile(h.TLSKey)
		for _, f := range []struct {
			path, mode string
			want       []byte
		}{{tlsCAPath(h), "644", ca}, {tlsCertPath(h), "644", cert}, {tlsKeyPath(h), "600", key}} {
			got := e.remote(ctx, h, "stat -c %a "+shQuote(f.path)+" && sha256sum < "+shQuote(f.path)+" | cut -d' ' -f1")
			if want := f.mode + "\n" + sha256hex(f.want) + "\n"; got != want {
				t.Errorf("%s %s: mode and sha256 %q, want %q", h.Name, f.path, got, want)
			}
		}
		args := e.remote(ctx, h, "cat "+shQuote(h.Dir)+"/etc/*.args")
		if !strings.Contains(args, "--tls-cert\n"+tlsCertPath(h)+"\n--tls-key\n"+tlsKeyPath(h)+"\n--tls-ca\n"+tlsCAPath(h)) ||
			!strings.Contains(args, "https://") || strings.Contains(args, "http://") {
			t.Errorf("%s: args lack the TLS flags or have a plain http URL:\n%s", h.Name, args)
		}
		// The key's base64 lines must appear nowhere the deploy writes.
		for _, line := range strings.Split(string(key), "\n")[1:3] {
			if strings.Contains(deployOutput, line) || strings.Contains(args, line) {
				t.Errorf("%s: TLS key material in the deploy output or args", h.Name)
			}
		}
	}

	peer, _ := e.inv.PeerToken(false)
	p2 := e.inv.Hosts[1].URL(RoleParticipant)
	if !strings.HasPrefix(p2, "https://") {
		t.Fatalf("participant URL %s is not https", p2)
	}
	var f *rpc.Fault
	for _, url := range []string{p2, e.inv.Coordinator().URL(RoleCoordinator)} {
		plain := "http://" + strings.TrimPrefix(url, "https://")
		_, err := rpc.NewClient(plain, rpc.WithToken(nil, peer)).Call(ctx, "digest")
		if err == nil || errors.As(err, &f) {
			t.Errorf("plain http call to %s: %v, want no XML-RPC answer", plain, err)
		}
		var unknownCA x509.UnknownAuthorityError
		if _, err := rpc.NewClient(url, rpc.WithToken(nil, peer)).Call(ctx, "digest"); !errors.As(err, &unknownCA) {
			t.Errorf("https call to %s trusting the system's CAs only: %v, want an unknown authority", url, err)
		}
	}

	h3 := e.inv.Hosts[2]
	e.remote(ctx, h3, "chmod 644 "+shQuote(tlsKeyPath(h3)))
	if err := e.ops.Deploy(ctx, "h3", twopcBinary(t)); err != nil {
		t.Fatalf("deploy after loosening h3's key: %v\n%s", err, e.output())
	}
	if out := e.output(); !strings.Contains(out, "TLS files installed; participant restarted") {
		t.Errorf("a loosened key mode should be reinstalled and the participant restarted")
	}
	if got := e.remote(ctx, h3, "stat -c %a "+shQuote(tlsKeyPath(h3))); got != "600\n" {
		t.Errorf("h3 key mode after redeploy: %q", got)
	}
}

// remote runs script on h over SSH and returns its stdout.
func (e *testEnv) remote(ctx context.Context, h Host, script string) string {
	e.t.Helper()
	c, err := Dial(ctx, h, e.inv.KnownHosts)
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Run(ctx, script, nil)
	if err != nil {
		e.t.Fatalf("%s: %s: %v", h.Name, script, err)
	}
	return string(res.Stdout)
}

// tlsInventory writes an inventory with TLS on (two hosts, a: coordinator
// and participant on 10.0.0.1, b: participant on 0.0.0.0 of b.example.net)
// and its certificates, made by GenerateCerts, into a new folder.
func tlsInventory(t *testing.T) (dir string, doc map[string]any) {
	t.Helper()
	dir = t.TempDir()
	doc = map[string]any{
		"tls_ca":   "tls/ca.crt",
		"defaults": map[string]any{"user": "u", "key": "/k", "dir": "/srv/twopc", "tls_cert": "tls/{name}.crt", "tls_key": "tls/{name}.key"},
		"hosts": []any{
			map[string]any{"name": "a", "address": "10.0.0.1", "roles": []string{"coordinator", "participant"},
				"coordinator_listen": "10.0.0.1:7400", "participant_listen": "10.0.0.1:7401"},
			map[string]any{"name": "b", "address": "b.example.net", "roles": []string{"participant"}, "participant_listen": "0.0.0.0:7401"},
		},
	}
	inv := parseTLS(t, dir, doc)
	var out bytes.Buffer
	if err := inv.GenerateCerts(&out); err != nil {
		t.Fatalf("GenerateCerts: %v", err)
	}
	if !strings.Contains(out.String(), "made  b            "+filepath.Join(dir, "tls/b.crt")+" for b.example.net") {
		t.Errorf("GenerateCerts output:\n%s", out.String())
	}
	return dir, doc
}

func parseTLS(t *testing.T, dir string, doc map[string]any) *Inventory {
	t.Helper()
	data, _ := json.Marshal(doc)
	inv, err := ParseInventory(data, dir)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// TestTLSInventory: a TLS inventory turns every URL into https and gives
// both servers the TLS flags; certificates made by GenerateCerts pass the
// deploy's check; rerunning GenerateCerts changes nothing.
func TestTLSInventory(t *testing.T) {
	dir, doc := tlsInventory(t)
	inv := parseTLS(t, dir, doc)
	if _, err := inv.loadTLS(); err != nil {
		t.Fatalf("certificates made by GenerateCerts refused: %v", err)
	}
	a, b := inv.Hosts[0], inv.Hosts[1]
	if b.TLSCert != filepath.Join(dir, "tls/b.crt") {
		t.Errorf("{name} in defaults: tls_cert %s", b.TLSCert)
	}
	if got := inv.participantsFlag(membership{}); got != "a=https://10.0.0.1:7401/RPC2,b=https://b.example.net:7401/RPC2" {
		t.Errorf("--participants %s", got)
	}
	want := "participant --listen 0.0.0.0:7401 --db /srv/twopc/data/participant.db --coordinator https://10.0.0.1:7400/RPC2 --peer-token-file /srv/twopc/etc/peer.token" +
		" --tls-cert /srv/twopc/etc/cert.pem --tls-key /srv/twopc/etc/key.pem --tls-ca /srv/twopc/etc/ca.pem"
	if got := strings.Join(inv.args(b, RoleParticipant, membership{}), " "); got != want {
		t.Errorf("args\n%s\nwant\n%s", got, want)
	}
	if unit := string(inv.unitFile(a, RoleCoordinator, membership{})); !strings.Contains(unit, "--participants a=https://10.0.0.1:7401/RPC2,b=https://b.example.net:7401/RPC2") ||
		!strings.Contains(unit, "--tls-key /srv/twopc/etc/key.pem --tls-ca /srv/twopc/etc/ca.pem\n") {
		t.Errorf("unit file:\n%s", unit)
	}
	if b.LocalURL(RoleParticipant) != "https://127.0.0.1:7401/RPC2" || b.ServerName(RoleParticipant) != "b.example.net" {
		t.Errorf("b is checked as %s at %s", b.ServerName(RoleParticipant), b.LocalURL(RoleParticipant))
	}
	if fi, err := os.Stat(CAKeyFile(inv.TLSCA)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("CA key: %v %v", fi, err)
	}

	before, _ := os.ReadFile(b.TLSCert)
	var out bytes.Buffer
	if err := inv.GenerateCerts(&out); err != nil || strings.Count(out.String(), "unchanged") != 2 || strings.Contains(out.String(), "made") {
		t.Errorf("second GenerateCerts: %v\n%s", err, out.String())
	}
	if after, _ := os.ReadFile(b.TLSCert); !bytes.Equal(before, after) {
		t.Error("second GenerateCerts rewrote a certificate")
	}
}

// TestTLSInventoryRefuses: each TLS mistake is reported before any host
// is contacted, as an inventory error naming the host and the file, and
// never with key material in it.
func TestTLSInventoryRefuses(t *testing.T) {
	other := func(t *testing.T) signer {
		ca, _, _, err := newCA()
		if err != nil {
			t.Fatal(err)
		}
		return ca
	}
	write := func(t *testing.T, path string, data []byte, mode os.FileMode) {
		if err := os.WriteFile(path, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	// reissue replaces b's certificate and key with ones from ca for names.
	reissue := func(t *testing.T, dir string, ca signer, names ...string) {
		cert, key, err := ca.issue(names)
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, "tls/b.crt"), cert, 0o644)
		write(t, filepath.Join(dir, "tls/b.key"), key, 0o600)
	}
	for _, tc := range []struct {
		name  string
		edit  func(t *testing.T, dir string, doc map[string]any)
		wants []string // in the error, besides ErrInventory
	}{
		{"cert without key", func(t *testing.T, dir string, doc map[string]any) {
			delete(doc["defaults"].(map[string]any), "tls_key")
		}, []string{`host "a"`, "tls_cert and tls_key go together"}},
		{"certs without tls_ca", func(t *testing.T, dir string, doc map[string]any) {
			delete(doc, "tls_ca")
		}, []string{`host "b"`, "no tls_ca"}},
		{"tls_ca without certs", func(t *testing.T, dir string, doc map[string]any) {
			d := doc["defaults"].(map[string]any)
			delete(d, "tls_cert")
			delete(d, "tls_key")
		}, []string{`host "a"`, "has no tls_cert"}},
		{"CA missing", func(t *testing.T, dir string, doc map[string]any) {
			os.Remove(filepath.Join(dir, "tls/ca.crt"))
		}, []string{"tls_ca", "tls/ca.crt", "no such file", "deploy:certs"}},
		{"CA file without a certificate", func(t *testing.T, dir string, doc map[string]any) {
			write(t, filepath.Join(dir, "tls/ca.crt"), []byte("not PEM\n"), 0o644)
		}, []string{"tls_ca", "tls/ca.crt", "no PEM certificate"}},
		{"CA file with a key in it", func(t *testing.T, dir string, doc map[string]any) {
			ca, _ := os.ReadFile(filepath.Join(dir, "tls/ca.crt"))
			key, _ := os.ReadFile(filepath.Join(dir, "tls/ca.key"))
			write(t, filepath.Join(dir, "tls/ca.crt"), append(ca, key...), 0o644)
		}, []string{"tls_ca", "tls/ca.crt", "holds a private key"}},
		{"cert missing", func(t *testing.T, dir string, doc map[string]any) {
			os.Remove(filepath.Join(dir, "tls/b.crt"))
		}, []string{`host "b"`, "tls_cert", "tls/b.crt", "no such file"}},
		{"key missing", func(t *testing.T, dir string, doc map[string]any) {
			os.Remove(filepath.Join(dir, "tls/b.key"))
		}, []string{`host "b"`, "tls_key", "tls/b.key", "no such file"}},
		{"cert is a folder", func(t *testing.T, dir string, doc map[string]any) {
			os.Remove(filepath.Join(dir, "tls/b.crt"))
			os.Mkdir(filepath.Join(dir, "tls/b.crt"), 0o700)
		}, []string{`host "b"`, "tls_cert", "tls/b.crt", "is a directory"}},
		{"key readable by others", func(t *testing.T, dir string, doc map[string]any) {
			os.Chmod(filepath.Join(dir, "tls/b.key"), 0o644)
		}, []string{`host "b"`, "tls/b.key", "readable by group or others", "chmod 600"}},
		{"key readable by group", func(t *testing.T, dir string, doc map[string]any) {
			os.Chmod(filepath.Join(dir, "tls/b.key"), 0o640)
		}, []string{`host "b"`, "tls/b.key", "-rw-r-----"}},
		{"SAN misses the listen address", func(t *testing.T, dir string, doc map[string]any) {
			// a's coordinator moves to an address its certificate lacks.
			doc["hosts"].([]any)[0].(map[string]any)["coordinator_listen"] = "10.0.0.9:7400"
		}, []string{`host "a"`, "tls/a.crt", "does not cover 10.0.0.9, where peers reach the coordinator", "it names 10.0.0.1"}},
		{"SAN misses the address of a 0.0.0.0 listen", func(t *testing.T, dir string, doc map[string]any) {
			ca, _, _ := loadOrCreateCA(filepath.Join(dir, "tls/ca.crt"))
			reissue(t, dir, ca, "127.0.0.1", "b.example.org")
		}, []string{`host "b"`, "tls/b.crt", "does not cover b.example.net", "b.example.org, 127.0.0.1"}},
		{"cert from another CA", func(t *testing.T, dir string, doc map[string]any) {
			reissue(t, dir, other(t), "b.example.net")
		}, []string{`host "b"`, "tls/b.crt", "does not chain to tls_ca", "tls/ca.crt", "unknown authority"}},
		{"cert expired", func(t *testing.T, dir string, doc map[string]any) {
			ca, _, _ := loadOrCreateCA(filepath.Join(dir, "tls/ca.crt"))
			key, _ := os.ReadFile(filepath.Join(dir, "tls/b.key"))
			b, _ := pem.Decode(key)
			k, _ := x509.ParseECPrivateKey(b.Bytes)
			tmpl := template("expired", time.Hour)
			tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
			tmpl.DNSNames = []string{"b.example.net"}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
			if err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(dir, "tls/b.crt"), encodeCert(der), 0o644)
		}, []string{`host "b"`, "tls/b.crt", "expired on", "renew it"}},
		{"key of another host", func(t *testing.T, dir string, doc map[string]any) {
			key, _ := os.ReadFile(filepath.Join(dir, "tls/a.key"))
			write(t, filepath.Join(dir, "tls/b.key"), key, 0o600)
		}, []string{`host "b"`, "tls/b.key", "does not go with tls_cert", "tls/b.crt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, doc := tlsInventory(t)
			tc.edit(t, dir, doc)
			data, _ := json.Marshal(doc)
			inv, err := ParseInventory(data, dir)
			if err == nil {
				_, err = inv.loadTLS()
			}
			if err == nil || !errors.Is(err, ErrInventory) {
				t.Fatalf("err = %v, want an inventory error", err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			keys, _ := filepath.Glob(filepath.Join(dir, "tls/*.key"))
			for _, k := range keys {
				data, _ := os.ReadFile(k)
				if lines := strings.Split(string(data), "\n"); len(lines) > 1 && strings.Contains(err.Error(), lines[1]) {
					t.Errorf("the error shows the contents of %s", k)
				}
			}
			if inv == nil {
				return // refused by ParseInventory, which every command starts with
			}
			// A deploy stops there, before it dials a host (none exists).
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var out bytes.Buffer
			if err := (&Ops{Inv: inv, Out: &out}).Deploy(ctx, "all", twopcBinary(t)); !errors.Is(err, ErrInventory) || out.Len() > 0 {
				t.Errorf("deploy: %v, want the inventory error before any host\n%s", err, out.String())
			}
		})
	}
}
