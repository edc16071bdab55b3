package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twopc/twopc/internal/proc"
	"github.com/twopc/twopc/internal/rpc"
)

// binary is the twopc executable built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "twopc-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if binary, err = proc.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is a coordinator and three participants, each a process.
type cluster struct {
	t     *testing.T
	dir   string
	coord *proc.Process
	parts []*proc.Process
	url   string   // coordinator
	purls []string // participants
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newCluster(t *testing.T) *cluster { return newClusterWith(t, clusterFlags{}) }

// clusterFlags are flags added to the defaults of newCluster's servers.
type clusterFlags struct {
	all, coordinator, participants []string
}

func newClusterWith(t *testing.T, extra clusterFlags) *cluster {
	cl := &cluster{t: t, dir: t.TempDir()}
	caddr := freePort(t)
	cl.url = "http://" + caddr + "/RPC2"
	var members []string
	for i := 1; i <= 3; i++ {
		addr := freePort(t)
		name := fmt.Sprintf("p%d", i)
		u := "http://" + addr + "/RPC2"
		cl.purls = append(cl.purls, u)
		members = append(members, name+"="+u)
		cl.parts = append(cl.parts, proc.New(proc.Spec{Name: name, Path: binary, Log: filepath.Join(cl.dir, name+".log"),
			Args: append([]string{"participant", "--listen", addr, "--db", filepath.Join(cl.dir, name+".db"), "--coordinator", cl.url,
				"--resolve-after", "1s", "--resolve-interval", "200ms"}, append(extra.all, extra.participants...)...)}))
	}
	cl.coord = proc.New(proc.Spec{Name: "coordinator", Path: binary, Log: filepath.Join(cl.dir, "coordinator.log"),
		Args: append([]string{"coordinator", "--listen", caddr, "--participants", strings.Join(members, ","),
			"--log", filepath.Join(cl.dir, "coordinator.txlog"), "--prepare-timeout", "1s"}, append(extra.all, extra.coordinator...)...)})
	t.Cleanup(func() {
		for _, p := range append(cl.parts, cl.coord) {
			p.Kill()
		}
		if t.Failed() {
			for _, p := range append(cl.parts, cl.coord) {
				t.Logf("--- %s log (last 3000 bytes):\n%s", p.Name(), p.Tail(3000))
			}
		}
	})
	for _, p := range cl.parts {
		cl.start(p)
	}
	cl.start(cl.coord)
	cl.waitReady()
	return cl
}

func (cl *cluster) start(p *proc.Process) {
	cl.t.Helper()
	if err := p.Start(); err != nil {
		cl.t.Fatal(err)
	}
}

// restart kills p with SIGKILL, waits until it is gone, and starts it again.
func (cl *cluster) restart(p *proc.Process) {
	cl.t.Helper()
	if err := p.Kill(); err != nil {
		cl.t.Fatal(err)
	}
	cl.start(p)
}

// call makes one XML-RPC call with a bounded wait.
func call(url, method string, args ...any) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return rpc.NewClient(url, nil).Call(ctx, method, args...)
}

// eventually retries f until it returns nil, for at most limit: the
// processes recover in the background and this waits for them to.
func eventually(t *testing.T, limit time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (cl *cluster) waitReady() {
	cl.t.Helper()
	eventually(cl.t, 30*time.Second, "cluster ready", func() error {
		res, err := call(cl.url, "status")
		if err != nil {
			return err
		}
		return allActive(res)
	})
}

// allActive checks a status reply: the coordinator sees every participant.
func allActive(status any) error {
	for _, p := range status.(map[string]any)["participants"].([]any) {
		if st := p.(map[string]any)["state"]; st != "active" {
			return fmt.Errorf("%v is %v", p.(map[string]any)["name"], st)
		}
	}
	return nil
}

func ctxTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}
