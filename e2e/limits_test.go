package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twopc/twopc/ops/launch"
)

// A client that starts a request and never finishes it is disconnected,
// and the server goes on answering others.
func TestSlowClientIsCutOff(t *testing.T) {
	cl := newCluster(t, func(c *launch.Config) { c.CoordinatorArgs = []string{"--read-timeout", "300ms"} })
	u := cl.CoordinatorURL()
	addr := strings.TrimSuffix(strings.TrimPrefix(u, "http://"), "/RPC2")

	for _, tc := range []struct{ name, send string }{
		{"body never finished", "POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 1000\r\n\r\n<?xml version"},
		{"headers never finished", "POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Le"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, tc.send); err != nil {
				t.Fatal(err)
			}
			// Bound the wait, so a server that never hangs up fails the
			// test instead of hanging it.
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, err = io.ReadAll(bufio.NewReader(conn))
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the server kept the connection of a client that never finished its request")
			}
			if _, err := call(u, nil, "system.listMethods"); err != nil {
				t.Fatalf("server no longer answers: %v", err)
			}
		})
	}
}

// Every size limit is enforced with fault 4 and a message stating it.
func TestSizeLimits(t *testing.T) {
	cl := newCluster(t)
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is required: ", err)
	}
	host := strings.TrimPrefix(cl.CoordinatorURL(), "http://")
	host = strings.TrimSuffix(host, "/RPC2")
	deep := strings.Repeat("<value><array><data>", 40) + strings.Repeat("</data></array></value>", 40)
	params := strings.Repeat("<param><value>x</value></param>", 65)
	for _, tc := range []struct{ name, body, limit string }{
		{"body", "<?xml version='1.0'?><methodCall><methodName>put</methodName><params><param><value>k</value></param><param><value>" +
			strings.Repeat("v", 5<<20) + "</value></param></params></methodCall>", "4194304"},
		{"nesting", "<?xml version='1.0'?><methodCall><methodName>put</methodName><params><param>" + deep + "</param></params></methodCall>", "32"},
		{"params", "<?xml version='1.0'?><methodCall><methodName>put</methodName><params>" + params + "</params></methodCall>", "64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := fmt.Sprintf(`
import sys, xmlrpc.client as x
try:
    x.Transport().request(%q, "/RPC2", sys.stdin.buffer.read())
    sys.exit("accepted")
except x.Fault as f:
    print(f.faultCode, f.faultString)
    sys.exit(0 if f.faultCode == 4 and %q in f.faultString else "wrong fault")
`, host, tc.limit)
			cmd := exec.Command(python, "-c", script)
			cmd.Stdin = strings.NewReader(tc.body)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
		})
	}
}
