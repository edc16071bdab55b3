package deploy

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// The test hosts are real OpenSSH servers, one per loopback address
// (127.0.0.2, .3, .4: Linux routes all of 127/8 to lo without setup), each
// started by the test with its own config, host key and authorized_keys on
// a free high port. The system sshd is never touched.

// sshdPath finds Debian's sshd. In CI (CI set) its absence fails the test:
// the e2e tests must run there; elsewhere they are skipped.
func sshdPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/sshd", "/usr/bin/sshd"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("sshd not found: install openssh-server (.ci/run does)")
	}
	t.Skip("sshd not found: install openssh-server to run the SSH end-to-end tests")
	return ""
}

// testHost is one running sshd.
type testHost struct {
	ip      string
	port    int
	hostKey ssh.PublicKey
	cmd     *exec.Cmd
	done    chan struct{}
	logMu   sync.Mutex
	log     strings.Builder
}

// stop ends this sshd (only it: the process the test started).
func (h *testHost) stop() {
	if h.cmd == nil || h.cmd.Process == nil {
		return
	}
	h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.cmd.Process.Kill()
		<-h.done
	}
}

// sshKit is the client side shared by the test hosts: a user key, and the
// user the hosts let in.
type sshKit struct {
	dir     string
	keyPath string
	pub     ssh.PublicKey
	user    string
}

func newKit(t *testing.T) *sshKit {
	t.Helper()
	dir := t.TempDir()
	k := &sshKit{dir: dir, keyPath: filepath.Join(dir, "id_ed25519")}
	k.pub = writeKey(t, k.keyPath)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	k.user = u.Username
	return k
}

// writeKey writes a new ed25519 private key in OpenSSH format (mode 0600)
// and returns its public half.
func writeKey(t *testing.T, path string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// startSSHD starts an sshd on ip and a free port. It returns once sshd
// says it listens; the cleanup stops it.
func (k *sshKit) startSSHD(t *testing.T, ip string) *testHost {
	t.Helper()
	bin := sshdPath(t)
	if os.Geteuid() == 0 {
		// sshd running as root wants its privilege separation directory,
		// which only the system's init scripts create.
		os.MkdirAll("/run/sshd", 0o755)
	}
	dir := t.TempDir()
	h := &testHost{ip: ip, hostKey: writeKey(t, filepath.Join(dir, "host_key"))}
	auth := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(auth, ssh.MarshalAuthorizedKey(k.pub), 0o600); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for range 3 { // the free port may be taken between probe and bind
		h.port = freePort(t, ip)
		cfg := filepath.Join(dir, "sshd_config")
		conf := fmt.Sprintf(`ListenAddress %s:%d
HostKey %s
PidFile none
AuthorizedKeysFile %s
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
AllowUsers %s
LogLevel VERBOSE
`, ip, h.port, filepath.Join(dir, "host_key"), auth, k.user)
		if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		if lastErr = h.start(bin, cfg); lastErr == nil {
			t.Cleanup(h.stop)
			return h
		}
	}
	t.Fatalf("sshd on %s: %v", ip, lastErr)
	return nil
}

// start runs sshd in the foreground (-D) logging to stderr (-e) and waits
// for its "Server listening" line, or its exit.
func (h *testHost) start(bin, cfg string) error {
	h.cmd = exec.Command(bin, "-D", "-e", "-f", cfg)
	stderr, err := h.cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := h.cmd.Start(); err != nil {
		return err
	}
	h.done = make(chan struct{})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			h.logMu.Lock()
			h.log.WriteString(sc.Text() + "\n")
			h.logMu.Unlock()
			if !signalled && strings.Contains(sc.Text(), "Server listening on") {
				close(ready)
				signalled = true
			}
		}
		h.cmd.Wait()
		close(h.done)
	}()
	select {
	case <-ready:
		return nil
	case <-h.done:
		return fmt.Errorf("sshd exited: %s", h.logText())
	case <-time.After(30 * time.Second):
		h.stop()
		return fmt.Errorf("sshd not listening after 30s: %s", h.logText())
	}
}

func (h *testHost) logText() string {
	h.logMu.Lock()
	defer h.logMu.Unlock()
	return h.log.String()
}

// knownHostsLine is h's line for a known_hosts file.
func (h *testHost) knownHostsLine() string {
	return knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(h.ip, strconv.Itoa(h.port)))}, h.hostKey) + "\n"
}

func freePort(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("listen on %s: %v (loopback aliases need Linux)", ip, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
