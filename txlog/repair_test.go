package txlog

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strings"
	"testing"

	"github.com/twopc/twopc/protocol"
)

// The intact log every corruption starts from, and where its lines begin.
var (
	goodLines = []string{
		line(epochRec(1)),
		line(commitRec("1.1", "a", "p1", "p2")),
		line(commitRec("1.2", "b", "p1", "p2")),
		line(endRec("1.1")),
		line(commitRec("1.3", "c", "p1")),
	}
	good      = strings.Join(goodLines, "")
	goodState = "epoch=1 pending=1.2,1.3"
)

var formatLine = line(protocol.Record{Kind: protocol.KindFormat, Format: Format})

// blank is n newlines: padding.
func blank(n int) string { return strings.Repeat("\n", n) }

// loseSector blanks the first whole sector of a test file's data (after
// its format line) from offset from on: a sector of a write over
// padding that a crash lost.
func loseSector(data string, from int) string {
	k := ((len(formatLine)+from)/sector+1)*sector - len(formatLine)
	return data[:k] + blank(sector) + data[k+sector:]
}

func lineOffset(i int) int { return len(strings.Join(goodLines[:i], "")) }

// framed puts body in a line with a correct checksum, whatever body holds.
func framed(body string) string {
	return fmt.Sprintf("%08x %s\n", crc32.Checksum([]byte(body), castagnoli), body)
}

// outcome of opening a damaged file.
type outcome int

const (
	clean   outcome = iota // opens as it is
	cut                    // a torn tail is cut at off
	corrupt                // refused with ErrCorrupt naming off
)

func TestOpenDamagedFiles(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		want  outcome
		off   int    // cut or corrupt: the offset reported
		state string // clean or cut: describe(State)
	}{
		{
			name: "intact", data: good,
			want: clean, state: goodState,
		},
		{
			name: "empty file is a new log", data: "",
			want: clean, state: "epoch=0 pending=",
		},
		{
			name: "torn last line without newline",
			data: good + line(commitRec("1.4", "d", "p1"))[:20],
			want: cut, off: len(good), state: goodState,
		},
		{
			name: "whole last line but no newline",
			data: good + strings.TrimSuffix(line(commitRec("1.4", "d", "p1")), "\n"),
			want: cut, off: len(good), state: goodState,
		},
		{
			name: "last line with newline but bad checksum",
			data: good + "00000000" + line(endRec("1.2"))[8:],
			want: cut, off: len(good), state: goodState,
		},
		{
			name: "trailing NUL bytes",
			data: good + strings.Repeat("\x00", 4096),
			want: cut, off: len(good), state: goodState,
		},
		{
			name: "padding: blank lines after the last line",
			data: good + strings.Repeat("\n", 4096),
			want: clean, state: goodState,
		},
		{
			name: "a torn write over padding: a sector lost, then whole lines",
			data: loseSector(good+line(commitRec("1.4", strings.Repeat("k", 1200), "p1"))+line(endRec("1.2"))+blank(600), len(good)),
			want: cut, off: len(good), state: goodState,
		},
		{
			name: "whole lines after padding",
			data: good + blank(sector-(len(formatLine)+len(good))%sector) + line(endRec("1.2")),
			want: cut, off: len(good), state: goodState,
		},
		{
			name: "a blank line in the middle is damage, not padding",
			data: good[:lineOffset(3)-2] + "\n" + good[lineOffset(3)-1:],
			want: corrupt, off: lineOffset(2),
		},
		{
			name: "NUL bytes with newlines in them",
			data: good + "\x00\x00\n\x00\x00\x00\n\x00",
			want: cut, off: len(good), state: goodState,
		},
		{
			name: "file truncated mid-line",
			data: good[:len(good)-5],
			want: cut, off: lineOffset(4), state: "epoch=1 pending=1.2",
		},
		{
			name: "file truncated inside the checksum",
			data: good[:lineOffset(1)+3],
			want: cut, off: lineOffset(1), state: "epoch=1 pending=",
		},
		{
			name: "blank last line (padding)",
			data: good + "\n",
			want: clean, state: goodState,
		},
		{
			name: "flipped byte in a middle line",
			data: flip(good, lineOffset(2)+15),
			want: corrupt, off: lineOffset(2),
		},
		{
			name: "flipped byte in the checksum of the first line",
			data: flip(good, 3),
			want: corrupt, off: 0,
		},
		{
			name: "garbage followed by a line without newline",
			data: good + "garbage\n" + strings.TrimSuffix(line(endRec("1.2")), "\n"),
			want: corrupt, off: len(good),
		},
		{
			name: "duplicate commit and end records are replayed idempotently",
			data: line(epochRec(3)) +
				line(commitRec("3.1", "a", "p1")) +
				line(commitRec("3.1", "a", "p1")) +
				line(commitRec("3.2", "b", "p1")) +
				line(endRec("3.1")) +
				line(endRec("3.1")) +
				line(endRec("2.9")) + // unknown txid
				line(commitRec("3.2", "b", "p1")),
			want: clean, state: "epoch=3 pending=3.2",
		},
		{
			name: "epoch going backwards",
			data: line(epochRec(2)) + line(commitRec("2.1", "a", "p1")) + line(epochRec(1)) + line(endRec("2.1")),
			want: corrupt, off: len(line(epochRec(2)) + line(commitRec("2.1", "a", "p1"))),
		},
		{
			name: "epoch repeated as the last line",
			data: good + line(epochRec(1)),
			want: corrupt, off: len(good),
		},
		{
			name: "epoch zero",
			data: line(epochRec(0)),
			want: corrupt, off: 0,
		},
		{
			name: "unknown kind mid-file",
			data: good[:lineOffset(3)] + framed("rollback 1.2") + good[lineOffset(3):],
			want: corrupt, off: lineOffset(3),
		},
		{
			name: "unknown kind as the last line is not a torn write",
			data: good + framed("rollback 1.4"),
			want: corrupt, off: len(good),
		},
		{
			name: "malformed fields",
			data: good + framed("commit 1.4 p1,,p2 \"k\""),
			want: corrupt, off: len(good),
		},
		{
			name: "non-canonical epoch",
			data: framed("epoch 007"),
			want: corrupt, off: 0,
		},
		{
			name: "non-canonical key quoting",
			data: good + framed("commit 1.4 p1 `k`"),
			want: corrupt, off: len(good),
		},
		{
			name: "uppercase checksum",
			data: strings.ToUpper(good[:8]) + good[8:],
			want: corrupt, off: 0,
		},
	}
	for _, tt := range tests {
		// Every file starts with its format line, as this code writes it
		// (TestOlderFormat covers files without one).
		tt.data = formatLine + tt.data
		tt.off += len(formatLine)
		t.Run(tt.name, func(t *testing.T) {
			path := tempLog(t)
			if err := os.WriteFile(path, []byte(tt.data), 0o640); err != nil {
				t.Fatal(err)
			}

			// Scan judges the same way and never writes.
			sst, serr := Scan(path)
			if got := readFile(t, path); string(got) != tt.data {
				t.Fatalf("Scan modified the file")
			}

			l, st, err := Open(path, Options{})
			switch tt.want {
			case corrupt:
				if err == nil {
					l.Close()
					t.Fatalf("Open succeeded with state %s, want ErrCorrupt", describe(st))
				}
				t.Log(err)
				checkCorrupt(t, err, path, tt.off)
				checkCorrupt(t, serr, path, tt.off)
				if got := readFile(t, path); string(got) != tt.data {
					t.Errorf("refused file was modified:\n got %q\nwant %q", got, tt.data)
				}
				if s := siblings(t, path); len(s) != 0 {
					t.Errorf("refusing left files behind: %v", s)
				}
				return
			case clean:
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if st.TornTail != nil || sst.TornTail != nil {
					t.Errorf("torn tail reported for a clean file: %+v", st.TornTail)
				}
				if got := readFile(t, path); string(got) != tt.data {
					t.Errorf("Open modified a clean file")
				}
			case cut:
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				checkCut(t, path, tt.data, tt.off, st.TornTail, sst.TornTail)
			}
			if serr != nil {
				t.Fatalf("Scan: %v", serr)
			}
			if got := describe(st); got != tt.state {
				t.Errorf("Open state = %s, want %s", got, tt.state)
			}
			if got := describe(sst); got != tt.state {
				t.Errorf("Scan state = %s, want %s", got, tt.state)
			}

			// After the repair the log takes appends and reopens cleanly.
			next := epochRec(st.Epoch + 1)
			mustAppend(t, l, next, commitRec("new", "z", "p9"))
			mustClose(t, l)
			again := reopenState(t, path)
			if again.TornTail != nil {
				t.Errorf("second open found a torn tail: %+v", again.TornTail)
			}
			wantPending := strings.TrimPrefix(tt.state, fmt.Sprintf("epoch=%d pending=", st.Epoch))
			want := fmt.Sprintf("epoch=%d pending=%s", next.Epoch, strings.TrimPrefix(wantPending+",new", ","))
			if got := describe(again); got != want {
				t.Errorf("after append and reopen: %s, want %s", got, want)
			}
		})
	}
}

func checkCorrupt(t *testing.T, err error, path string, off int) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error = %v, want ErrCorrupt", err)
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, fmt.Sprintf("at offset %d:", off)) {
		t.Errorf("error %q does not name %s and offset %d", msg, path, off)
	}
}

func checkCut(t *testing.T, path, data string, off int, torn, scanned *Torn) {
	t.Helper()
	if torn == nil {
		t.Fatalf("no torn tail reported")
	}
	// The tail's length leaves out the padding after it, but for one newline.
	want := len(strings.TrimRight(data[off:], "\n"))
	if want < len(data)-off {
		want++
	}
	if torn.Offset != int64(off) || torn.Bytes != int64(want) {
		t.Errorf("torn tail at %d (%d bytes), want %d (%d bytes)", torn.Offset, torn.Bytes, off, want)
	}
	if scanned == nil || scanned.Offset != torn.Offset || scanned.Bytes != torn.Bytes || scanned.CopyPath != "" {
		t.Errorf("Scan reported %+v, Open %+v", scanned, torn)
	}
	if got := readFile(t, path); string(got) != data[:off] {
		t.Errorf("file after cut = %q, want %q", got, data[:off])
	}
	if !strings.HasPrefix(torn.CopyPath, path+".torn-") {
		t.Fatalf("copy path %q", torn.CopyPath)
	}
	if got := readFile(t, torn.CopyPath); string(got) != data {
		t.Errorf("copy holds %q, want the original %q", got, data)
	}
}

func flip(s string, i int) string {
	b := []byte(s)
	b[i] ^= 0x01
	return string(b)
}

func TestScanLeavesTornTail(t *testing.T) {
	path := tempLog(t)
	data := good + "deadbeef commit 1.4 p1 \"tor"
	if err := os.WriteFile(path, []byte(data), 0o640); err != nil {
		t.Fatal(err)
	}
	st, err := Scan(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.TornTail == nil || st.TornTail.Offset != int64(len(good)) || st.TornTail.CopyPath != "" {
		t.Errorf("TornTail = %+v, want offset %d and no copy", st.TornTail, len(good))
	}
	if got := readFile(t, path); !bytes.Equal(got, []byte(data)) {
		t.Errorf("Scan changed the file")
	}
	if s := siblings(t, path); len(s) != 0 {
		t.Errorf("Scan created %v", s)
	}
}

// A file of format 1 (no format line, one key per record) is read as it
// is and rewritten in the current format by Open, so that an older twopc
// refuses it at its first line; a newer format, or one going backwards,
// is refused.
func TestOlderFormat(t *testing.T) {
	path := tempLog(t)
	v1 := line(epochRec(3)) + line(commitRec("3.1", "k", "p1", "p2")) + line(commitRec("3.2", "j", "p1"))
	if err := os.WriteFile(path, []byte(v1), 0o640); err != nil {
		t.Fatal(err)
	}
	l, st, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)
	if got := describe(st); got != "epoch=3 pending=3.1,3.2" {
		t.Errorf("state of the format 1 file: %s", got)
	}
	if got, want := lines(readFile(t, path)), formatLine+v1; got != want {
		t.Errorf("after Open:\n got %q\nwant %q", got, want)
	}

	for name, data := range map[string]string{
		"newer format":     line(protocol.Record{Kind: protocol.KindFormat, Format: Format + 1}) + line(epochRec(1)),
		"format backwards": formatLine + line(epochRec(1)) + line(protocol.Record{Kind: protocol.KindFormat, Format: 1}),
	} {
		path := tempLog(t)
		if err := os.WriteFile(path, []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
		if _, _, err := Open(path, Options{}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Open gave %v, want ErrCorrupt", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
