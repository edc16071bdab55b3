package drill

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

// blowUp is a history whose search takes porcupine hundreds of MB (about
// 480 MB, in 3 s, unbounded): on the key k, writes of unknown outcome,
// each followed by a read that did not see it, then a read of a value
// nobody wrote, which only the whole search can refuse; and a thousand
// keys that nothing links, after it, which make each state the search
// keeps 32 KB (one entry per key of the history).
func blowUp() History {
	var ops []Op
	for i := range 5 {
		t := int64(10 * i)
		ops = append(ops, outcome(put(i, "k", fmt.Sprint("v", i), t, t+5), Unknown), getMissing(100+i, "k", t+6, t+7))
	}
	ops = append(ops, get(200, "k", "never written", 1000, 1010))
	for i := range 1000 {
		ops = append(ops, put(300+i, fmt.Sprintf("pad%d", i), "x", 0, 1))
	}
	return History{Ops: ops}
}

// A search that outgrows its memory bound is stopped, and its group is
// Unknown for that reason; the groups after it are still decided; and the
// memory was a child's, not this process's.
func TestCheckMemoryBound(t *testing.T) {
	const bound = 200 << 20
	h := blowUp()
	// Writing 5 to clear_refs resets the peak (VmHWM) to what is resident.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatal(err)
	}
	before := vmKB(t, "VmHWM")
	v, err := CheckBounded(h, 0, bound)
	grew := vmKB(t, "VmHWM") - before
	if err != nil {
		t.Fatal(err)
	}
	t.Log(v)
	if grew > bound>>10/4 {
		t.Fatalf("this process's peak grew by %d MiB while checking", grew>>10)
	}
	if v.Result != porcupine.Unknown || v.OutOfMemory != bound || v.TimedOut || !slices.Equal(v.Undecided, []string{"k"}) {
		t.Fatalf("result %s, out of memory at %d, timed out %v, undecided %q; want Unknown at %d, the key k only",
			v.Result, v.OutOfMemory, v.TimedOut, v.Undecided, bound)
	}
	if !strings.Contains(v.String(), `Unknown (the search reached its memory bound of 200 MiB on the keys ["k"]`) {
		t.Fatalf("verdict %q", v)
	}
}

// The search again for the visualization runs under the bound too.
func TestVisualizationMemoryBound(t *testing.T) {
	h := blowUp()
	stopped, err := runChecker(job{History: h, Groups: []int{0}, Visualize: true}, 200<<20, func(io.Reader) {})
	if err != nil || !stopped {
		t.Fatalf("stopped %v, %v", stopped, err)
	}
}

// vmKB is a line of /proc/self/status, in kB.
func vmKB(t *testing.T, key string) int64 {
	t.Helper()
	kb, err := procKB("/proc/self/status", key)
	if err != nil || kb == 0 {
		t.Fatalf("%s: %d kB, %v", key, kb, err)
	}
	return kb
}
