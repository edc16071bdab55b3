package deploy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/ops/drill"
	"golang.org/x/crypto/ssh/knownhosts"
)

var (
	buildOnce sync.Once
	buildDir  string
	binary    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// twopcBinary builds ./cmd/twopc once for all tests.
func twopcBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "twopc-deploy-bin")
		if buildErr != nil {
			return
		}
		binary = filepath.Join(buildDir, "twopc")
		out, err := exec.Command("go", "build", "-ldflags", "-X main.version=deploy-e2e",
			"-o", binary, "github.com/twopc/twopc/cmd/twopc").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// testEnv is a set of SSH hosts and an inventory over them.
type testEnv struct {
	t       *testing.T
	kit     *sshKit
	hosts   []*testHost
	root    string // every host's remote dir is under it
	doc     map[string]any
	invPath string
	inv     *Inventory
	out     bytes.Buffer
	ops     *Ops
	ca      *x509.CertPool // with useTLS: the CA the hosts' certificates chain to
}

var hostIPs = []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}

// newEnv starts an sshd per address and writes an inventory: the first
// host is coordinator and participant, the others participants. Hosts
// listed in unknown are left out of known_hosts. Processes deployed are
// stopped, and checked gone, when the test ends.
func newEnv(t *testing.T, unknown ...int) *testEnv {
	t.Helper()
	sshdPath(t)
	if _, err := exec.LookPath("pgrep"); err != nil {
		t.Fatal("pgrep not found (install procps): the tests need it to prove nothing is left running")
	}
	e := &testEnv{t: t, kit: newKit(t), root: t.TempDir()}
	var known strings.Builder
	type hostJSON map[string]any
	var hosts []hostJSON
	for i, ip := range hostIPs {
		h := e.kit.startSSHD(t, ip)
		e.hosts = append(e.hosts, h)
		if !containsInt(unknown, i) {
			known.WriteString(h.knownHostsLine())
		}
		hj := hostJSON{"name": fmt.Sprintf("h%d", i+1), "address": ip, "port": h.port,
			"roles": []string{RoleParticipant}, "participant_listen": net.JoinHostPort(ip, strconv.Itoa(freePort(t, ip))),
			"dir": filepath.Join(e.root, fmt.Sprintf("h%d", i+1))}
		if i == 0 {
			hj["roles"] = []string{RoleCoordinator, RoleParticipant}
			hj["coordinator_listen"] = net.JoinHostPort(ip, strconv.Itoa(freePort(t, ip)))
		}
		hosts = append(hosts, hj)
	}
	kh := filepath.Join(e.kit.dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(known.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	e.doc = map[string]any{
		"known_hosts": kh,
		"defaults":    map[string]any{"user": e.kit.user, "key": e.kit.keyPath},
		"hosts":       hosts,
	}
	e.invPath = filepath.Join(e.kit.dir, "inventory.json")
	e.writeInventory()
	t.Cleanup(e.cleanup) // runs before the sshds stop (cleanups are LIFO)
	return e
}

// writeInventory writes e.doc as the inventory file and loads it.
func (e *testEnv) writeInventory() {
	e.t.Helper()
	data, _ := json.MarshalIndent(e.doc, "", "  ")
	if err := os.WriteFile(e.invPath, data, 0o600); err != nil {
		e.t.Fatal(err)
	}
	inv, err := LoadInventory(e.invPath)
	if err != nil {
		e.t.Fatal(err)
	}
	e.inv = inv
	e.ops = &Ops{Inv: inv, Out: &e.out}
}

// useTLS turns TLS on in the inventory as an operator would: tls_ca and
// per-host files in defaults, made by GenerateCerts (deploy:certs).
func (e *testEnv) useTLS() {
	t := e.t
	t.Helper()
	e.doc["tls_ca"] = "tls/ca.crt"
	d := e.doc["defaults"].(map[string]any)
	d["tls_cert"], d["tls_key"] = "tls/{name}.crt", "tls/{name}.key"
	e.writeInventory()
	if err := e.inv.GenerateCerts(io.Discard); err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(e.inv.TLSCA)
	if err != nil {
		t.Fatal(err)
	}
	e.ca = x509.NewCertPool()
	if !e.ca.AppendCertsFromPEM(pem) {
		t.Fatal("no CA certificate in", e.inv.TLSCA)
	}
}

// client calls the services at their public URLs as a user of the
// cluster would: trusting the test's CA only (with useTLS), with token.
func (e *testEnv) client(url, token string) *rpc.Client {
	hc := rpc.NewHTTPClient()
	if e.ca != nil {
		hc.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: e.ca}
	}
	return rpc.NewClient(url, rpc.WithToken(hc, token))
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// output returns and resets what the operations printed.
func (e *testEnv) output() string {
	s := e.out.String()
	e.out.Reset()
	e.t.Logf("output:\n%s", s)
	return s
}

// procs lists the pids of twopc processes running from this test's dirs.
func (e *testEnv) procs() []int { return e.pgrep(e.root + "/") }

// services lists the pids of the coordinators and participants only,
// not their supervisors.
func (e *testEnv) services() []int {
	return e.pgrep(e.root + "/[^ ]*/bin/twopc (coordinator|participant) ")
}

func (e *testEnv) pgrep(pattern string) []int {
	out, _ := exec.Command("pgrep", "-f", pattern).Output() // exit 1: none
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

// cleanup stops what the test deployed, through the deploy itself, and
// fails the test if anything survived (then kills it, by pid).
func (e *testEnv) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var buf bytes.Buffer
	(&Ops{Inv: e.inv, Out: &buf}).Stop(ctx, "all")
	if pids := e.procs(); len(pids) > 0 {
		e.t.Errorf("processes left after stop: %v\n%s", pids, buf.String())
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
	}
}

// TestDeployTLSStatusDrillStop: the whole operator path over TLS, with a
// client token: deploy (and its idempotent rerun), the files on the hosts
// and their modes, https put/get, status, logs, restart, the kill drill,
// stop.
func TestDeployTLSStatusDrillStop(t *testing.T) {
	e := newEnv(t)
	e.useTLS()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin := twopcBinary(t)
	// With a client token, as an operator who wants one would set it up.
	clientToken := "client-secret-0123456789"
	e.inv.ClientTokenFile = filepath.Join(e.kit.dir, "client.token")
	if err := os.WriteFile(e.inv.ClientTokenFile, []byte(clientToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	if err := e.ops.Deploy(ctx, "all", bin); err != nil {
		t.Fatalf("deploy: %v\n%s", err, e.output())
	}
	out := e.output()
	for _, h := range []string{"h1", "h2", "h3"} {
		if !strings.Contains(out, "ok    "+h) {
			t.Errorf("no ok line for %s", h)
		}
	}
	if n := strings.Count(out, "TLS files installed"); n != 3 {
		t.Errorf("want TLS files installed on 3 hosts, got %d", n)
	}
	first := e.services()
	if len(first) != 4 {
		t.Fatalf("want 4 processes (1 coordinator, 3 participants), got %v", first)
	}

	// Idempotent: a second deploy changes nothing and restarts nothing.
	if err := e.ops.Deploy(ctx, "all", bin); err != nil {
		t.Fatalf("second deploy: %v\n%s", err, e.output())
	}
	if out := e.output(); strings.Count(out, "unchanged, running") != 4 || strings.Contains(out, "installed") {
		t.Errorf("second deploy should install nothing and leave all 4 processes alone")
	}
	if again := e.services(); fmt.Sprint(again) != fmt.Sprint(first) {
		t.Errorf("second deploy changed the processes: %v -> %v", first, again)
	}

	e.checkPeerToken(ctx, out)
	e.checkTLS(ctx, out)

	if err := e.ops.Status(ctx); err != nil {
		t.Fatalf("status: %v\n%s", err, e.output())
	}
	out = e.output()
	if n := strings.Count(out, " active "); n < 4 {
		t.Errorf("status: want 4 active processes, found %d", n)
	}
	if !strings.Contains(out, "3/3 participants active, in doubt 0") || !strings.Contains(out, "deploy-e2e") {
		t.Errorf("status lacks the coordinator's view or the version")
	}

	// put/get through the deployed coordinator, which wants the client token.
	var f *rpc.Fault
	if _, err := e.client(e.inv.Coordinator().URL(RoleCoordinator), "").Call(ctx, "put", "hello", "world"); !errors.As(err, &f) || f.Code != rpc.NotAuthorised {
		t.Errorf("put without the client token: %v, want fault %d", err, rpc.NotAuthorised)
	}
	c := e.client(e.inv.Coordinator().URL(RoleCoordinator), clientToken)
	if _, err := c.Call(ctx, "put", "hello", "world"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Call(ctx, "get", "hello"); err != nil || got != "world" {
		t.Fatalf("get hello = %v, %v", got, err)
	}

	if err := e.ops.Logs(ctx, "h2", 5); err != nil {
		t.Fatalf("logs: %v\n%s", err, e.output())
	}
	if out := e.output(); !strings.Contains(out, "==> h2 participant <==") || !strings.Contains(out, "msg=serving") || !strings.Contains(out, "tls=true") {
		t.Errorf("logs lack the participant's serving line, with TLS on")
	}
	if err := e.ops.Restart(ctx, "coordinator"); err != nil {
		t.Fatalf("restart: %v\n%s", err, e.output())
	}
	if out := e.output(); !strings.Contains(out, "ok    h1           coordinator started pid") || strings.Contains(out, "participant") {
		t.Errorf("restart coordinator should restart the coordinator only")
	}
	if got, err := c.Call(ctx, "get", "hello"); err != nil || got != "world" {
		t.Fatalf("get hello after a restart = %v, %v", got, err)
	}

	cl, err := OpenCluster(ctx, e.inv)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var dout bytes.Buffer
	res, err := RunDrill(ctx, cl, DrillConfig{Faults: drill.CoordinatorKills(3, 500*time.Millisecond), Duration: 2 * time.Minute,
		OutDir: t.TempDir(), Out: &dout})
	t.Logf("drill:\n%s", dout.String())
	if err != nil {
		t.Fatalf("drill: %v", err)
	}
	if res.Faults[drill.KillCoordinator] != 3 || len(res.Faults) != 1 || res.OK == 0 {
		t.Errorf("the kill profile did %v with %d successful calls; want 3 coordinator kills and nothing else", res.Faults, res.OK)
	}
	// It said what it would do, by host name, and cleaned up after itself.
	for _, want := range []string{"drill: this attacks the LIVE cluster of " + e.invPath + " (coordinator on h1; participants h1, h2, h3)",
		"SIGKILLs the coordinator, 3 times", "kill-coordinator=3"} {
		if !strings.Contains(dout.String(), want) {
			t.Errorf("the drill's output lacks %q", want)
		}
	}
	m := regexp.MustCompile(`^8 deleted \(prefix "(drill-[0-9-]+-)"\)$`).FindStringSubmatch(res.Keys)
	if m == nil {
		t.Fatalf("keys: %q, want all 8 deleted", res.Keys)
	}
	if _, err := c.Call(ctx, "get", m[1]+"k0"); !errors.As(err, &f) || f.Code != rpc.NotFound {
		t.Errorf("get %sk0 after the drill: %v, want fault %d", m[1], err, rpc.NotFound)
	}

	if err := e.ops.Stop(ctx, "all"); err != nil {
		t.Fatalf("stop: %v\n%s", err, e.output())
	}
	e.output()
	if pids := e.procs(); len(pids) != 0 {
		t.Errorf("processes left after stop: %v", pids)
	}
	if err := e.ops.Status(ctx); err == nil {
		t.Errorf("status of a stopped cluster should fail")
	}
	e.output()
}

func TestUnknownHostKeyRefusesDeploy(t *testing.T) {
	e := newEnv(t, 1) // h2 is not in known_hosts
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := e.ops.Deploy(ctx, "h2", twopcBinary(t))
	out := e.output()
	if err == nil {
		t.Fatal("deploy to a host with an unknown key succeeded")
	}
	fp := "SHA256:" // the fingerprint the server offered, and the fix
	for _, want := range []string{"FAIL  h2", "UNKNOWN", fp, "ssh-keyscan -p " + strconv.Itoa(e.hosts[1].port)} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if _, err := os.Stat(e.inv.Hosts[1].Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused host was touched: %s exists", e.inv.Hosts[1].Dir)
	}
}

func TestChangedHostKeyRefusesDeploy(t *testing.T) {
	e := newEnv(t)
	// known_hosts now holds another key for h3's address.
	other := writeKey(t, filepath.Join(t.TempDir(), "other"))
	h3 := e.hosts[2]
	changed := knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(h3.ip, strconv.Itoa(h3.port)))}, other) + "\n"
	kh := e.hosts[0].knownHostsLine() + e.hosts[1].knownHostsLine() + changed
	if err := os.WriteFile(e.inv.KnownHosts, []byte(kh), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := e.ops.Status(ctx)
	out := e.output()
	if err == nil || !strings.Contains(out, "CHANGED") || !strings.Contains(out, "ssh-keygen -R") {
		t.Errorf("status with a changed host key: err %v", err)
	}
}

func TestHostDownOthersDeploy(t *testing.T) {
	e := newEnv(t)
	e.hosts[2].stop() // h3 is down
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	err := e.ops.Deploy(ctx, "all", twopcBinary(t))
	out := e.output()
	if err == nil || !strings.Contains(err.Error(), "h3") {
		t.Fatalf("deploy with h3 down: err = %v", err)
	}
	for _, want := range []string{"ok    h1", "ok    h2", "FAIL  h3", "1 of 3 host(s) FAILED: h3"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if n := len(e.services()); n != 3 {
		t.Errorf("want the 3 processes of h1 and h2 running, got %d", n)
	}
}

// The SSH implementation keeps drill.Cluster's contract.
var _ drill.Cluster = (*Cluster)(nil)

// TestChaosOverSSH runs the randomized drill (kills of any process,
// pauses of participants, linearizability check) through Cluster: one
// fault of each kind, in a seeded order, then the checks.
func TestChaosOverSSH(t *testing.T) {
	e := newEnv(t)
	e.inv.ClientTokenFile = filepath.Join(e.kit.dir, "client.token")
	if err := os.WriteFile(e.inv.ClientTokenFile, []byte("chaos-client-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := e.ops.Deploy(ctx, "all", twopcBinary(t)); err != nil {
		t.Fatalf("deploy: %v\n%s", err, e.output())
	}
	e.output()
	cl, err := OpenCluster(ctx, e.inv)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out bytes.Buffer
	outDir := os.Getenv("TWOPC_CHAOS_OUT") // keep the history of a failure for study
	if outDir == "" {
		outDir = t.TempDir()
	}
	// The deployed coordinator runs with the binary's default prepare
	// timeout, 2s.
	faults := drill.Chaos(500*time.Millisecond, 2*time.Second)
	faults.Limit = len(drill.ProcessFaults)
	res, err := RunDrill(ctx, cl, DrillConfig{Faults: faults, Duration: 3 * time.Minute, OutDir: outDir, Out: &out})
	t.Logf("chaos:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range drill.ProcessFaults {
		if res.Faults[k] != 1 {
			t.Errorf("%d %s faults, want 1 of each kind", res.Faults[k], k)
		}
	}
	if err := cl.Healthy(ctx); err != nil {
		t.Errorf("after the drill: %v", err)
	}
}

// TestRedeployAppliesChanges: a second deploy restarts exactly what its
// change touches and stops a role taken off a host.
func TestRedeployAppliesChanges(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin := twopcBinary(t)
	if err := e.ops.Deploy(ctx, "all", bin); err != nil {
		t.Fatalf("deploy: %v\n%s", err, e.output())
	}
	e.output()
	h1, h2 := &e.inv.Hosts[0], &e.inv.Hosts[1]
	h1.Roles, h1.ParticipantListen = []string{RoleCoordinator}, ""
	h2.ParticipantListen = net.JoinHostPort(h2.Address, strconv.Itoa(freePort(t, h2.Address)))
	if err := e.ops.Deploy(ctx, "all", bin); err != nil {
		t.Fatalf("redeploy: %v\n%s", err, e.output())
	}
	out := e.output()
	for _, want := range []string{
		"participant stopped (no longer in the inventory)", // h1
		"coordinator restarted",                            // h1: its participants changed
		"ok    h2           participant restarted",
		"ok    h3           participant unchanged, running",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("redeploy output lacks %q", want)
		}
	}
	if n := len(e.services()); n != 3 {
		t.Errorf("want 3 processes (coordinator, 2 participants), got %d", n)
	}
	// Without tls_ca the cluster serves plain http.
	c := e.client(e.inv.Coordinator().URL(RoleCoordinator), "")
	if _, err := c.Call(ctx, "put", "k", "v"); err != nil {
		t.Fatalf("put over http: %v", err)
	}
	if got, err := c.Call(ctx, "get", "k"); err != nil || got != "v" {
		t.Errorf("get k over http = %v, %v", got, err)
	}
	if err := e.ops.Status(ctx); err != nil {
		t.Errorf("status: %v\n%s", err, e.output())
	}
	e.output()
	e.checkSupervised(ctx, c)
}

// checkSupervised: in background mode, a participant killed with SIGKILL
// is restarted by its supervisor without an operator, status counts the
// restart and says why, and writes go on.
func (e *testEnv) checkSupervised(ctx context.Context, c *rpc.Client) {
	t := e.t
	t.Helper()
	h3 := e.inv.Hosts[2]
	b, err := os.ReadFile(pidPath(h3, RoleParticipant))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^h3 +participant +active +(\d+) +1 \(last: killed by SIGKILL\)`)
	var out string
	for deadline := time.Now().Add(3 * time.Minute); ; {
		err := e.ops.Status(ctx)
		out = e.out.String()
		e.out.Reset()
		if m := row.FindStringSubmatch(out); err == nil && m != nil && m[1] != strconv.Itoa(first) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("h3's participant not back with one restart counted 3 minutes after kill -9 of pid %d:\n%s", first, out)
		}
		time.Sleep(200 * time.Millisecond) // poll interval
	}
	t.Logf("status after kill -9 of h3's participant:\n%s", out)
	if _, err := c.Call(ctx, "put", "after", "kill"); err != nil {
		t.Errorf("put after h3's participant came back: %v", err)
	}
}

// checkPeerToken: the deploy made a peer token, kept it private, never
// put it on a command line or in a log, and the participants demand it.
func (e *testEnv) checkPeerToken(ctx context.Context, deployOutput string) {
	t := e.t
	t.Helper()
	peer, err := e.inv.PeerToken(false)
	if err != nil {
		t.Fatal(err)
	}
	client, _ := e.inv.ClientToken()
	private := []string{e.inv.PeerTokenFile}
	for _, h := range e.inv.Hosts {
		private = append(private, tokenPath(h), argsPath(h, RoleParticipant))
	}
	if client != "" {
		private = append(private, clientTokenPath(e.inv.Coordinator()))
	}
	for _, f := range private {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: want mode 0600, got %v (%v)", f, fi.Mode().Perm(), err)
		}
	}
	var leaks []string
	for _, tok := range []string{peer, client} {
		if tok == "" {
			continue
		}
		if strings.Contains(deployOutput, tok) {
			leaks = append(leaks, "deploy output")
		}
		for _, pid := range e.procs() {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); bytes.Contains(b, []byte(tok)) {
				leaks = append(leaks, fmt.Sprintf("command line of %d", pid))
			}
		}
		logs, _ := filepath.Glob(filepath.Join(e.root, "*", "log", "*"))
		args, _ := filepath.Glob(filepath.Join(e.root, "*", "etc", "*.args"))
		for _, f := range append(logs, args...) {
			if b, _ := os.ReadFile(f); bytes.Contains(b, []byte(tok)) {
				leaks = append(leaks, f)
			}
		}
	}
	if len(leaks) > 0 {
		t.Errorf("the peer token leaked into %v", leaks)
	}
	p := e.client(e.inv.Hosts[1].URL(RoleParticipant), "")
	var f *rpc.Fault
	if _, err := p.Call(ctx, "digest"); !errors.As(err, &f) || f.Code != rpc.NotAuthorised {
		t.Errorf("participant digest without the token: %v, want fault %d", err, rpc.NotAuthorised)
	}
	if _, err := e.client(e.inv.Hosts[1].URL(RoleParticipant), peer).Call(ctx, "digest"); err != nil {
		t.Errorf("participant digest with the token: %v", err)
	}
}
