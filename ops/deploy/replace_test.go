package deploy

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twopc/twopc/api"
	"github.com/twopc/twopc/internal/putload"
	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/peer"
)

// TestReplaceLostParticipantHost is the operator's sequence for a host
// lost for good, over real OpenSSH, with TLS and a client token. Under a
// put load, h3's participant and its supervisor are killed with SIGKILL,
// its directory deleted and its sshd stopped: the host is gone. The
// coordinator (exclude_after 3s) excludes it and writes go on. h4 joins
// the inventory (deploy:certs makes its certificate); a deploy does not
// make it a member. participant:replace h3 h4 runs under the load,
// which stops once h4 is active. Every acknowledged put is then on h1,
// h2 and h4, and their digests are equal. A redeploy from the inventory
// that still lists h3 leaves h3 out and restarts nothing; once h3 is out
// of the inventory, deploy and status are clean, and the coordinator
// restarted keeps h1, h2 and h4.
func TestReplaceLostParticipantHost(t *testing.T) {
	e := newEnv(t)
	clientToken := "replace-client-token-0123"
	tokenFile := filepath.Join(e.kit.dir, "client.token")
	if err := os.WriteFile(tokenFile, []byte(clientToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.doc["client_token_file"] = tokenFile
	e.doc["exclude_after"] = "3s" // long enough that a healthy participant under -race is not taken for a silent one
	e.useTLS()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin := twopcBinary(t)
	if err := e.ops.Deploy(ctx, "all", bin); err != nil {
		t.Fatalf("deploy: %v\n%s", err, e.output())
	}
	e.output()
	coordURL := e.inv.Coordinator().URL(RoleCoordinator)
	load := startLoad(t, e.client(coordURL, clientToken), 2)
	load.WaitAcks(200)

	e.loseHost(2) // h3, for good
	// Writes go on without h3 once it is excluded.
	load.WaitAcks(200)
	err := e.ops.Status(ctx)
	if out := e.output(); err == nil || !strings.Contains(out, "h3    participant  UNREACHABLE") || !strings.Contains(out, "2/3 participants active") {
		t.Errorf("status with h3 lost: %v", err)
	}

	e.addHost("127.0.0.5", "h4")
	if err := e.ops.Deploy(ctx, "h1", bin); err != nil {
		t.Fatalf("deploy h1 with h4 in the inventory: %v\n%s", err, e.output())
	}
	if out := e.output(); !strings.Contains(out, "coordinator unchanged, running") || !strings.Contains(out, "leaves out h4 (not added to the cluster yet)") {
		t.Errorf("a deploy must not hand the coordinator h4, not added yet")
	}

	var out syncBuffer
	active := out.when("h4 is active")
	done := make(chan error, 1)
	go func() {
		done <- (&Ops{Inv: e.inv, Out: &out}).ReplaceParticipant(ctx, Replacement{Old: "h3", New: "h4", Binary: bin})
	}()
	var acked map[string]string
	select {
	case <-active:
		// Writes went on during the catch-up, and go on a little with h4
		// in the write set; then they pause, as the final check wants.
		load.WaitAcks(50)
		acked = load.End()
		err = <-done
	case err = <-done:
		acked = load.End()
	}
	t.Logf("participant:replace h3 h4:\n%s", out.String())
	if err != nil {
		t.Fatalf("replace: %v", err)
	}
	for _, want := range []string{
		"replace h3 by h4: h3 is a participant (excluded); h4 (127.0.0.5) will serve at https://127.0.0.5:",
		"== step 1/6: deploy h4", "ok    h4 ", "participant started pid", "h4 serves at https://127.0.0.5:",
		"== step 2/6: add h4", "members.add h4 https://127.0.0.5:",
		"== step 3/6: wait until h4 is active (at most 30m0s)", "h4 is active, after",
		"== step 4/6: remove h3", "members.remove h3: removed for good; the coordinator's config now names h1, h2, h4, for its next start",
		"== step 5/6: stop h3's participant", "h3 is not reachable (",
		"== step 6/6: check", "status: h1 active, h2 active, h4 active; h3 gone", "digests equal on h1, h2, h4:",
		"replace h3 by h4: done, h4 is active in h3's place.", "Now edit " + e.invPath + ": delete host h3.\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the replacement's output lacks %q", want)
		}
	}
	e.checkOnEveryParticipant(ctx, acked, "h1", "h2", "h4")

	// Run again, it finds every step done and checks again.
	out = syncBuffer{}
	if err := (&Ops{Inv: e.inv, Out: &out}).ReplaceParticipant(ctx, Replacement{Old: "h3", New: "h4", Binary: bin}); err != nil {
		t.Fatalf("replace again: %v", err)
	}
	t.Logf("participant:replace h3 h4, again:\n%s", out.String())
	for _, want := range []string{"h3 is not a participant any more and h4 is (active): resuming", "h4 is a participant already (active): not added again",
		"h3 is not a participant any more: not removed again; the coordinator's config names h1, h2, h4 already", "digests equal on h1, h2, h4:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the rerun's output lacks %q", want)
		}
	}

	// The inventory still lists h3: a deploy fails on h3 alone (its host
	// is gone), restarts nothing, and keeps h3 out of --participants.
	err = e.ops.Deploy(ctx, "all", bin)
	redeploy := e.output()
	if err == nil || !strings.Contains(redeploy, "1 of 4 host(s) FAILED: h3") || strings.Contains(redeploy, "restarted") ||
		!strings.Contains(redeploy, "leaves out h3 (removed from the cluster)") {
		t.Errorf("redeploy with h3 still in the inventory: %v", err)
	}
	args, _ := os.ReadFile(argsPath(e.inv.Coordinator(), RoleCoordinator))
	if names := strings.Join(participantsArg(args), ","); names != "h1,h2,h4" {
		t.Errorf("coordinator --participants %s, want h1,h2,h4", names)
	}

	// The operator takes h3 out of the inventory, as the replacement said.
	e.doc["hosts"] = slices.DeleteFunc(e.hostDocs(), func(h map[string]any) bool { return h["name"] == "h3" })
	e.writeInventory()
	if err := e.ops.Deploy(ctx, "all", bin); err != nil {
		t.Fatalf("deploy without h3: %v\n%s", err, e.output())
	}
	if out := e.output(); strings.Count(out, "unchanged, running") != 4 {
		t.Errorf("deploy without h3 should leave the 4 processes alone")
	}
	if err := e.ops.Restart(ctx, "coordinator"); err != nil {
		t.Fatalf("restart coordinator: %v\n%s", err, e.output())
	}
	e.output()
	if err := e.ops.Status(ctx); err != nil {
		t.Errorf("status: %v\n%s", err, e.output())
	} else if out := e.output(); !strings.Contains(out, "3/3 participants active") {
		t.Errorf("status after the coordinator's restart lacks 3/3 participants active")
	}
	st, err := api.NewClient(coordURL, e.httpClient(clientToken)).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range st.Participants {
		names = append(names, p.Name+"="+p.State)
	}
	if got := strings.Join(names, ","); got != "h1=active,h2=active,h4=active" {
		t.Errorf("after the coordinator's restart: %s, want h1, h2 and h4 active", got)
	}
}

// TestReplaceRefusesBeforeAnyChange: names that cannot work are refused
// before any host is contacted, saying so.
func TestReplaceRefusesBeforeAnyChange(t *testing.T) {
	inv, err := LoadInventory("../../deploy/inventory.example.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ old, new, want string }{
		{"db3", "db3", "db3 twice: a machine that took a lost host's name needs no replacement: deploy it (mage deploy:host db3)"},
		{"db3", "db4", "db4 is not in the inventory: add the new host"},
	} {
		err := (&Ops{Inv: inv}).ReplaceParticipant(context.Background(), Replacement{Old: tc.old, New: tc.new})
		if err == nil || !strings.Contains(err.Error(), "replace "+tc.old+" by "+tc.new+": nothing changed: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("replace %s by %s: %v, want %q", tc.old, tc.new, err, tc.want)
		}
	}
}

// loseHost loses host i for good: its participant and supervisor
// killed with SIGKILL (the supervisor first, so that it restarts
// nothing), its directory deleted, its sshd stopped.
func (e *testEnv) loseHost(i int) {
	t := e.t
	t.Helper()
	h := e.inv.Hosts[i]
	for _, f := range []string{supervisorPidPath(h, RoleParticipant), pidPath(h, RoleParticipant)} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 %d (%s): %v", pid, f, err)
		}
	}
	if err := os.RemoveAll(h.Dir); err != nil {
		t.Fatal(err)
	}
	e.hosts[i].stop()
}

// addHost adds a host with roles (default: participant), as an operator
// would: an sshd at ip (its key in known_hosts), an entry in the
// inventory, its certificate made by deploy:certs. Its processes are
// stopped before its sshd.
func (e *testEnv) addHost(ip, name string, roles ...string) {
	t := e.t
	t.Helper()
	h := e.kit.startSSHD(t, ip)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		(&Ops{Inv: e.inv, Out: io.Discard}).Stop(ctx, name)
	})
	e.hosts = append(e.hosts, h)
	kh, err := os.OpenFile(e.inv.KnownHosts, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	kh.WriteString(h.knownHostsLine())
	kh.Close()
	if len(roles) == 0 {
		roles = []string{RoleParticipant}
	}
	doc := map[string]any{"name": name, "address": ip, "port": h.port, "roles": roles, "dir": filepath.Join(e.root, name)}
	for _, r := range roles {
		doc[r+"_listen"] = net.JoinHostPort(ip, strconv.Itoa(freePort(t, ip)))
	}
	e.doc["hosts"] = append(e.hostDocs(), doc)
	e.writeInventory()
	if e.ca != nil {
		if err := e.inv.GenerateCerts(io.Discard); err != nil {
			t.Fatal(err)
		}
	}
}

// hostDocs are the inventory's hosts, as e.doc holds them, to edit.
func (e *testEnv) hostDocs() []map[string]any {
	data, _ := json.Marshal(e.doc["hosts"])
	var hosts []map[string]any
	if err := json.Unmarshal(data, &hosts); err != nil {
		e.t.Fatal(err)
	}
	return hosts
}

// httpClient is what client uses: the test's CA (with useTLS) and token.
func (e *testEnv) httpClient(token string) *http.Client {
	hc := rpc.NewHTTPClient()
	if e.ca != nil {
		hc.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: e.ca}
	}
	return rpc.WithToken(hc, token)
}

// checkOnEveryParticipant reads every acknowledged key at each named
// participant, at its public URL with the peer token, and compares
// their digests.
func (e *testEnv) checkOnEveryParticipant(ctx context.Context, acked map[string]string, names ...string) {
	t := e.t
	t.Helper()
	token, err := e.inv.PeerToken(false)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(acked))
	for k := range acked {
		keys = append(keys, k)
	}
	var first string
	for _, name := range names {
		i := slices.IndexFunc(e.inv.Hosts, func(h Host) bool { return h.Name == name })
		pc := peer.NewClient(e.inv.Hosts[i].URL(RoleParticipant), e.httpClient(token), 0)
		for chunk := range slices.Chunk(keys, 256) {
			ks, err := pc.Read(ctx, chunk...)
			if err != nil {
				t.Fatalf("read at %s: %v", name, err)
			}
			for _, k := range ks {
				if got := k.Current(false); !got.Found || string(got.Value.Data) != acked[k.Key] || k.Pending != "" {
					t.Fatalf("acknowledged put %s=%s at %s: found %v, value %q, pending %q", k.Key, acked[k.Key], name, got.Found, got.Value.Data, k.Pending)
				}
			}
		}
		d, err := pc.Digest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		digest := fmt.Sprintf("%d keys, hash %s", d.Keys, d.Hash)
		if first == "" {
			first = digest
		}
		if digest != first || d.Prepared != 0 {
			t.Errorf("%s: %s, %d prepared; %s: %s", name, digest, d.Prepared, names[0], first)
		}
	}
	t.Logf("%d acknowledged puts, all on %s; digests %s", len(acked), strings.Join(names, ", "), first)
}

// startLoad runs clients putting keys through c (putload.Start).
func startLoad(t *testing.T, c *rpc.Client, clients int, tolerate ...int) *putload.Load {
	return putload.Start(t, clients, func(int) *rpc.Client { return c }, tolerate...)
}

// syncBuffer is a buffer written by one goroutine and read by another;
// when closes a channel once the text has appeared in it.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	waits map[string]chan struct{}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	for text, ch := range b.waits {
		if bytes.Contains(b.buf.Bytes(), []byte(text)) {
			close(ch)
			delete(b.waits, text)
		}
	}
	return n, err
}

func (b *syncBuffer) when(text string) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.waits == nil {
		b.waits = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	b.waits[text] = ch
	return ch
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
