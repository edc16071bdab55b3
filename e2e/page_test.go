package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twopc/twopc/ops/launch"
	"github.com/twopc/twopc/protocol"
	"github.com/twopc/twopc/txlog"
)

// browser starts a headless Chromium (Debian's package; .ci/run installs
// it) for the test, with a fresh profile and no traffic of its own.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is required (apt-get install chromium): ", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1100, 1000),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	return ctx
}

// js evaluates expr in the page; errors (a page reloading) come back as
// errors, for eventually to retry.
func js(ctx context.Context, expr string) (string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[string](expr))
}

// pageState reads what the test checks off the status page as it is now.
const pageState = `(() => {
  const ready = document.getElementById('ready');
  const rows = [...document.querySelectorAll('#participants tr[data-participant]')]
    .map(r => r.dataset.participant + '=' + r.querySelector('.state').textContent);
  const txs = [...document.querySelectorAll('#pending tr[data-txid]')]
    .map(r => [...r.cells].map(c => c.textContent).join(' | '));
  return [ready ? ready.dataset.ready : 'none', rows.join(','), txs.join('\n'), ready ? ready.textContent : ''].join('\n#\n');
})()`

// screenshot saves the page as a PNG in the test's folder and, when
// TWOPC_SCREENSHOTS names a folder (the README's are made so), there too.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil || img.Bounds().Dx() < 800 {
		t.Fatalf("screenshot %s: not a page-sized PNG: %v", name, err)
	}
	dirs := []string{t.TempDir()}
	if d := os.Getenv("TWOPC_SCREENSHOTS"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The status page in a real browser: everything up; then a participant
// killed with SIGKILL and a commit an earlier life of the coordinator
// could not deliver to it (offline shown, the transaction in doubt,
// waiting for it); then the participant back and the page clear again.
// The page reloads itself throughout: the test never reloads it.
func TestStatusPageInChromium(t *testing.T) {
	// p2 stays down while the page and the CLI are checked: it must not
	// be excluded meanwhile (that would finish the commit waiting for it).
	cl := newCluster(t, func(c *launch.Config) { c.CoordinatorArgs = append(c.CoordinatorArgs, "--exclude-after", "0") })
	const value = "page-value-7d3a" // must never show
	if _, err := call(cl.CoordinatorURL(), nil, "put", "hello", value); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)
	page := base(cl.CoordinatorURL()) + "/"
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	// waitFor polls the page until check accepts what it shows.
	waitFor := func(what string, check func(ready, participants, txs, banner string) error) {
		t.Helper()
		eventually(t, 30*time.Second, what, func() error {
			s, err := js(ctx, pageState)
			if err != nil {
				return err
			}
			f := strings.Split(s, "\n#\n")
			if len(f) != 4 {
				return fmt.Errorf("page state %q", s)
			}
			return check(f[0], f[1], f[2], f[3])
		})
	}
	allActive := "p1=active,p2=active,p3=active"
	waitFor("all up", func(ready, ps, txs, _ string) error {
		if ready != "true" || ps != allActive || txs != "" {
			return fmt.Errorf("ready %s, participants %s, transactions %q", ready, ps, txs)
		}
		return nil
	})
	screenshot(t, ctx, "status-page.png")

	// It reloads itself: the time it was rendered at changes.
	first, err := js(ctx, `document.getElementById('generated').textContent`)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the page reloads itself", func() error {
		now, err := js(ctx, `document.getElementById('generated').textContent`)
		if err != nil || now == first {
			return fmt.Errorf("still rendered at %q (%v)", now, err)
		}
		return nil
	})

	// A commit the coordinator decided and then died before p2 had it.
	kill(t, cl, cl.Coordinator(), "p2")
	logPath := cl.TxlogPath()
	log, state, err := txlog.Open(logPath, txlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	txid := fmt.Sprintf("%d.999999", state.Epoch)
	err = log.Append(protocol.Record{Kind: protocol.KindCommit, TxID: txid, Participants: []string{"p1", "p2", "p3"}, Keys: []string{"in-doubt-key"}})
	if cerr := log.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	start(t, cl, cl.Coordinator())
	// While the coordinator was down the browser got an error page, which
	// does not reload: open the page again once the coordinator serves.
	eventually(t, 30*time.Second, "the coordinator serves again", func() error {
		_, _, err := fetch(base(cl.CoordinatorURL()) + "/healthz")
		return err
	})
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	waitFor("p2 down", func(ready, ps, txs, banner string) error {
		switch {
		case ready != "false" || !strings.Contains(banner, "participant p2"):
			return fmt.Errorf("ready %s: %q", ready, banner)
		case ps != "p1=active,p2=offline,p3=active":
			return fmt.Errorf("participants %s", ps)
		case !strings.HasPrefix(txs, txid+` | "in-doubt-key" | committed | `) || !strings.HasSuffix(txs, "commit acknowledgement from p2 (offline)"):
			return fmt.Errorf("transactions %q", txs)
		}
		return nil
	})
	screenshot(t, ctx, "status-page-participant-down.png")
	// The operator's command line says the same, from the transactions
	// method.
	list := twopcCLI(t, cl, "txn", "list")
	if !strings.Contains(list, txid+"  committed") || !strings.Contains(list, `"in-doubt-key"`) || !strings.Contains(list, "commit acknowledgement from p2 (offline)") {
		t.Errorf("twopc txn list:\n%s", list)
	}
	explained := twopcCLI(t, cl, "txn", "explain", txid)
	for _, want := range []string{"transaction " + txid + ": committed", "commit  participants p1,p2,p3", "p2       did not answer",
		"waits for: commit acknowledgement from p2 (offline)", "resolved by: the coordinator: it sends commit"} {
		if !strings.Contains(explained, want) {
			t.Errorf("twopc txn explain lacks %q:\n%s", want, explained)
		}
	}
	if html, err := js(ctx, `document.documentElement.outerHTML`); err != nil || strings.Contains(html, value) {
		t.Errorf("the page shows a value (%v)", err)
	}

	start(t, cl, "p2")
	waitFor("p2 back", func(ready, ps, txs, _ string) error {
		if ready != "true" || ps != allActive || txs != "" {
			return fmt.Errorf("ready %s, participants %s, transactions %q", ready, ps, txs)
		}
		return nil
	})
	if list := twopcCLI(t, cl, "txn", "list"); !strings.HasPrefix(list, "nothing unfinished") {
		t.Errorf("twopc txn list once p2 is back:\n%s", list)
	}
	if out, err := exec.Command(binary, "txn", "explain", "--addr", cl.CoordinatorURL(), txid).CombinedOutput(); err == nil || !strings.Contains(string(out), "is not unfinished anywhere") {
		t.Errorf("explain of a finished transaction: %v\n%s", err, out)
	}
}

// twopcCLI runs "twopc CMD SUB --addr URL ARGS..." against cl's
// coordinator and returns what it printed.
func twopcCLI(t *testing.T, cl *launch.Cluster, cmd, sub string, rest ...string) string {
	t.Helper()
	args := append([]string{cmd, sub, "--addr", cl.CoordinatorURL()}, rest...)
	out, err := exec.Command(binary, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("twopc %q: %v\n%s", args, err, out)
	}
	return string(out)
}
