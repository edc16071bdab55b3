package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twopc/twopc/internal/hostile"
	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/ops/launch"
)

// The attacks of issue 13 (internal/hostile), each against real
// processes with default flags: the attacker gets its fault, and no
// process's peak resident memory passes the targets.
const (
	coordinatorRSS = 256 << 20
	participantRSS = 128 << 20
)

// hostileCluster is a cluster as `twopc local` and the SSH deploy run it
// (with a peer token), and where its attacks go.
func hostileCluster(t *testing.T, edit ...func(*launch.Config)) (*launch.Cluster, hostile.Target) {
	cl := newCluster(t, edit...)
	return cl, hostile.Target{Coordinator: cl.CoordinatorURL(), Participant: cl.ParticipantURLs()[0]}
}

// attack sends rounds of a's requests and returns what came back.
func attack(t *testing.T, a hostile.Attack, target hostile.Target, rounds int) hostile.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := hostile.Repeat(ctx, a, target, 0, rounds)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v %q", r, r.Messages)
	return r
}

// needPython returns python3's path: in CI a missing interpreter must
// fail the test, not skip it.
func needPython(t *testing.T) string {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is required: ", err)
	}
	return python
}

// afterAttack checks that the cluster still takes writes and that no
// process passed its memory target.
func afterAttack(t *testing.T, cl *launch.Cluster) {
	t.Helper()
	if _, err := call(cl.CoordinatorURL(), nil, "put", "after", "the attack"); err != nil {
		t.Errorf("put after the attack: %v", err)
	}
	checkPeaks(t, cl)
}

// checkPeaks fails the test if a process's peak RSS (VmHWM) passed its
// target.
func checkPeaks(t *testing.T, cl *launch.Cluster) {
	t.Helper()
	for _, name := range append([]string{cl.Coordinator()}, cl.Participants()...) {
		limit := int64(participantRSS)
		if name == cl.Coordinator() {
			limit = coordinatorRSS
		}
		peak := vmHWM(t, cl.Process(name).PID())
		t.Logf("%s: peak RSS %d MB", name, peak>>20)
		if peak > limit {
			t.Errorf("%s: peak RSS %d MB, over the target of %d MB", name, peak>>20, limit>>20)
		}
	}
}

// vmHWM reads a process's peak resident set size from /proc.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if kb, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(kb, "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

func logSizes(t *testing.T, cl *launch.Cluster) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, name := range append([]string{cl.Coordinator()}, cl.Participants()...) {
		fi, err := os.Stat(cl.Process(name).LogPath())
		if err != nil {
			t.Fatal(err)
		}
		out[name] = fi.Size()
	}
	return out
}

// Input that faults and logs used to repeat whole (names of megabytes)
// gets a short fault, and the logs grow by a few lines however often it
// is sent.
func TestHostileEcho(t *testing.T) {
	cl, target := hostileCluster(t)
	before := logSizes(t, cl)
	const rounds = 64
	r := attack(t, hostile.Echo, target, rounds)
	faults := 0
	for _, n := range r.Faults {
		faults += n
	}
	if r.Requests != rounds || faults != rounds {
		t.Errorf("%d requests, %d faults: want a fault for each of %d", r.Requests, faults, rounds)
	}
	if r.MaxReply > 1<<10 {
		t.Errorf("largest reply %d bytes: the input was repeated in it", r.MaxReply)
	}
	for name, size := range logSizes(t, cl) {
		// 64 requests of 3-10 MB: a few short lines at most.
		if grew := size - before[name]; grew > 64<<10 {
			t.Errorf("%s grew by %d bytes", name, grew)
		}
	}
	checkPeaks(t, cl)
}

// A participant checks the peer token before it reads a body: batches of
// 64 MiB sent without it cost nothing, each gets fault 5, and the
// cluster goes on writing.
func TestHostileUnauthBatch(t *testing.T) {
	cl, target := hostileCluster(t)
	const rounds = 32
	r := attack(t, hostile.UnauthBatch, target, rounds)
	if r.Faults[rpc.NotAuthorised] != rounds {
		t.Errorf("%v: want fault %d for each of %d requests", r, rpc.NotAuthorised, rounds)
	}
	afterAttack(t, cl)
}

// The participants' default body limit fits the coordinator's largest
// batches: concurrent puts of the largest values that XML writes four
// bytes for one go through (two such prepares share a batch). A
// coordinator serves one big request per two CPUs, within its memory
// budget: it is given both for four at once, as a larger machine would
// have. The long timeouts are for the two shared cores, not part of the
// check.
func TestParticipantBodyLimitFitsBatches(t *testing.T) {
	python := needPython(t)
	t.Setenv("GOMAXPROCS", "8") // read by the servers, which inherit it
	cl := newCluster(t, func(c *launch.Config) {
		c.PrepareTimeout, c.ResolveAfter = 30*time.Second, time.Minute
		c.CoordinatorArgs = []string{"--max-inflight-bytes", "268435456"}
	})
	script := `
import sys, threading, xmlrpc.client as x
url, n = sys.argv[1], (1 << 20) - 300
errors = []
def put(i):
    try:
        assert x.ServerProxy(url).put("gt%d" % i, ">" * n) is True
    except Exception as e:
        errors.append(repr(e)[:300])
ts = [threading.Thread(target=put, args=(i,)) for i in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
sys.exit("; ".join(errors) if errors else 0)
`
	if out, err := exec.Command(python, "-c", script, cl.CoordinatorURL()).CombinedOutput(); err != nil {
		t.Fatalf("puts of the largest escaped values: %v %s", err, out)
	}
}

// The multicall, with Python's MultiCall from four clients at
// once: a 188 KB request asking for a 1 MiB value a thousand times gets
// the copies that fit in the reply limit and fault 4 for the rest, or,
// while another such request is being served (one big request per two
// CPUs), fault 3 (busy, nothing done).
func TestHostileMulticall(t *testing.T) {
	python := needPython(t)
	cl, _ := hostileCluster(t)
	script := `
import sys, threading, xmlrpc.client as x
url = sys.argv[1]
big = "A" * (1 << 20)
x.ServerProxy(url).put("big", big)
problems, served, busy = [], [], []
def attack():
    for _ in range(3):
        m = x.MultiCall(x.ServerProxy(url))
        for _ in range(1000):
            m.get("big")
        values = faults = 0
        try:
            res = m()
        except x.Fault as f:
            if f.faultCode != 3 or "busy" not in f.faultString:
                problems.append(repr(f)[:300])
            busy.append(1)
            continue
        for i in range(1000):
            try:
                v = res[i]
                if faults or v != big:
                    problems.append("entry %d: a value after a fault, or a wrong one" % i)
                values += 1
            except x.Fault as f:
                if f.faultCode != 4 or "8388608" not in f.faultString:
                    problems.append("entry %d: %r" % (i, f))
                faults += 1
        if values < 1 or values + faults != 1000:
            problems.append("%d values, %d faults" % (values, faults))
        served.append(1)
ts = [threading.Thread(target=attack) for _ in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
print("served:", len(served), "busy:", len(busy), "problems:", problems[:5])
sys.exit(1 if problems or not served else 0)
`
	out, err := exec.Command(python, "-c", script, cl.CoordinatorURL()).CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("python multicall attack: %v", err)
	}
	checkPeaks(t, cl)
}

// 64 concurrent 4 MiB requests of empty values: each is answered, with
// its fault (-32602: the value is no string) when the memory in flight
// allowed it to be read, or fault 3 (busy) after a short wait when not.
func TestHostileFlood(t *testing.T) {
	cl, target := hostileCluster(t)
	const rounds = 192
	r := attack(t, hostile.Flood, target, rounds)
	if r.Requests != rounds || r.Faults[rpc.InvalidParams]+r.Faults[rpc.Unavailable] != rounds {
		t.Errorf("%v: want fault %d or %d for each of %d requests", r, rpc.InvalidParams, rpc.Unavailable, rounds)
	}
	afterAttack(t, cl)
}

// What the README says of lone surrogates, with Python's client: it
// sends one as a character reference, which the server reads as U+FFFD,
// so the two keys are one.
func TestLoneSurrogates(t *testing.T) {
	python := needPython(t)
	cl := newCluster(t)
	script := `
import sys, xmlrpc.client as x
s = x.ServerProxy(sys.argv[1])
assert s.put("key\ud800", "lone \udfff") is True
got = s.get("key\ufffd")
assert got == "lone \ufffd", repr(got)
`
	if out, err := exec.Command(python, "-c", script, cl.CoordinatorURL()).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
}
