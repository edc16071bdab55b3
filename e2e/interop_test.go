package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twopc/twopc/ops/launch"
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
	// about the wire, not about timeouts.
	cl := newCluster(t, func(c *launch.Config) { c.ResolveAfter, c.PrepareTimeout = time.Hour, time.Minute })
	out, err := exec.Command(python, "testdata/interop.py", cl.CoordinatorURL(), "1048576", "1024").CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("interop.py: %v", err)
	}
	if !strings.Contains(string(out), "all interoperability checks passed") {
		t.Fatal("interop.py did not finish")
	}

	// Fault 2: a transaction nobody decided holds "locked" at p1 (it would
	// be presumed aborted once p1 asked, but p1 waits an hour to ask).
	if _, err := call(cl.URL("p1"), cl.PeerHTTP(), "batch", []any{[]any{"prepare", "0.1", "locked", "put", "x"}}); err != nil {
		t.Fatal(err)
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
