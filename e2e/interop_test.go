package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twopc/twopc/api"
	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/ops/launch"
	"github.com/twopc/twopc/peer"
)

// Python's xmlrpc.client, the reference client, against a real cluster:
// e2e/testdata/interop.py lists the checks. python3 is required: in CI a
// missing interpreter must fail the test, not skip it.
func TestPythonInterop(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is required for the interoperability test: ", err)
	}
	// p1 must hold the undecided transaction below for the whole python
	// call (by default it would ask the coordinator about it after 1s),
	// and a 1 MiB put must not time out on a busy machine: this test is
	// about the wire, not about timeouts. No exclusion: fault 3 below
	// needs a write that waits for a participant that is down.
	cl := newCluster(t, func(c *launch.Config) {
		c.ResolveAfter, c.PrepareTimeout = time.Hour, time.Minute
		c.CoordinatorArgs = append(c.CoordinatorArgs, "--exclude-after", "0")
	})
	for _, script := range []struct{ file, done string }{
		{"testdata/interop.py", "all interoperability checks passed"},
		{"testdata/txn_examples.py", "txn examples ok"}, // the README's examples
	} {
		out, err := exec.Command(python, script.file, cl.CoordinatorURL(), "1048576", "1024").CombinedOutput()
		t.Logf("%s", out)
		if err != nil {
			t.Fatalf("%s: %v", script.file, err)
		}
		if !strings.Contains(string(out), script.done) {
			t.Fatalf("%s did not finish", script.file)
		}
	}

	// Fault 2: a transaction of a later epoch, which the coordinator's
	// start-up sweep leaves alone, holds "locked" at p1 (p1 waits an hour
	// to ask about it). It is sent with the coordinator's own term: a
	// later one would fence the coordinator off.
	st, err := api.NewClient(cl.CoordinatorURL(), cl.ClientHTTP()).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p1 := rpc.NewClient(cl.URL("p1"), cl.PeerHTTP()).WithHeader(peer.TermHeader, fmt.Sprint(st.Epoch))
	prepare := []any{"prepare", "999999.1", []any{[]any{}, []any{[]any{"put", "locked", "x"}}, []any{}}}
	if res, err := p1.Call(context.Background(), "batch", []any{prepare}); err != nil || fmt.Sprint(res) != "[[yes true false  [[put 1]]]]" {
		t.Fatalf("planting a prepared transaction: %v %v", res, err)
	}
	pythonFault(t, python, cl.CoordinatorURL(), `s.put("locked", "v")`, 2)
	// Fault 3: a participant is down.
	if err := cl.Kill(context.Background(), "p3"); err != nil {
		t.Fatal(err)
	}
	pythonFault(t, python, cl.CoordinatorURL(), `s.put("k", "v")`, 3)
}

// pythonFault runs one xmlrpc.client call that must fail with code.
func pythonFault(t *testing.T, python, url, callExpr string, code int) {
	t.Helper()
	script := fmt.Sprintf(`
import sys, xmlrpc.client as x
s = x.ServerProxy(%q)
try:
    %s
except x.Fault as f:
    sys.exit(0 if f.faultCode == %d else "fault %%d: %%s" %% (f.faultCode, f.faultString))
sys.exit("no fault")
`, url, callExpr, code)
	if out, err := exec.Command(python, "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("%s: want fault %d: %v %s", callExpr, code, err, out)
	}
}
