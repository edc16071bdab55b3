package txlog

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The log writes over blank padding past its end, a chunk at a time,
// and the file stays text: its lines, then blank lines.
func TestLogWritesOverPadding(t *testing.T) {
	path := tempLog(t)
	l, _ := openLog(t, path, Options{})
	mustAppend(t, l, epochRec(1), commitRec("1.1", "a", "p1"))
	data := readFile(t, path)
	want := formatLine + line(epochRec(1)) + line(commitRec("1.1", "a", "p1"))
	if !strings.HasPrefix(string(data), want) || !isPadding(data[len(want):]) || int64(len(data)) < PadBytes {
		t.Errorf("open log of %d bytes: want its %d bytes of lines, then blank lines to at least %d", len(data), len(want), PadBytes)
	}
	if l.Stats().Bytes != int64(len(want)) {
		t.Errorf("Stats().Bytes = %d, want %d", l.Stats().Bytes, len(want))
	}
	mustClose(t, l)
}

// A log that crashed with padding opens without a torn tail, and
// appends after its last line, not after the padding.
func TestReopenOverPadding(t *testing.T) {
	path := tempLog(t)
	l, _ := openLog(t, path, Options{})
	mustAppend(t, l, epochRec(1), commitRec("1.1", "a", "p1"))
	crashed := filepath.Join(t.TempDir(), "crashed.log")
	if err := os.WriteFile(crashed, readFile(t, path), 0o640); err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)

	l, st := openLog(t, crashed, Options{})
	if st.TornTail != nil || describe(st) != "epoch=1 pending=1.1" {
		t.Fatalf("reopened: torn tail %+v, state %s", st.TornTail, describe(st))
	}
	mustAppend(t, l, epochRec(2), commitRec("2.1", "b", "p1"))
	mustClose(t, l)
	for _, name := range siblings(t, crashed) {
		if strings.Contains(name, ".torn-") {
			t.Errorf("reopening kept a torn tail: %s", name)
		}
	}
	data := readFile(t, crashed)
	if want := line(commitRec("1.1", "a", "p1")) + line(epochRec(2)); !bytes.Contains(data, []byte(want)) {
		t.Errorf("file after reopening and appending:\n%q\nwant the new lines right after the old", bytes.TrimRight(data, "\n"))
	}
	if got := describe(reopenState(t, crashed)); got != "epoch=2 pending=1.1,2.1" {
		t.Errorf("state after a second reopen: %s", got)
	}
}
