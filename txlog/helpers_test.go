package txlog

import (
	"fmt"
	"github.com/twopc/twopc/protocol"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func epochRec(n uint64) protocol.Record { return protocol.Record{Kind: protocol.KindEpoch, Epoch: n} }
func endRec(tx string) protocol.Record  { return protocol.Record{Kind: protocol.KindEnd, TxID: tx} }
func stagedRec(tx, key string, parts ...string) protocol.Record {
	return protocol.Record{Kind: protocol.KindStaged, TxID: tx, Participants: parts, Keys: []string{key}}
}
func commitRec(tx, key string, parts ...string) protocol.Record {
	return protocol.Record{Kind: protocol.KindCommit, TxID: tx, Participants: parts, Keys: []string{key}}
}

// line is rec's encoded line, newline included.
func line(rec protocol.Record) string { return string(appendLine(nil, rec)) }

// describe renders a State compactly for comparisons:
// "epoch=1 pending=1.2,1.3".
func describe(st *State) string {
	var txs []string
	for _, r := range st.Pending {
		txs = append(txs, r.TxID)
	}
	return fmt.Sprintf("epoch=%d pending=%s", st.Epoch, strings.Join(txs, ","))
}

func tempLog(t testing.TB) string {
	return filepath.Join(t.TempDir(), "tx.log")
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// lines is a log file's lines, without the padding after them.
func lines(data []byte) string {
	return strings.TrimRight(string(data), "\n") + "\n"
}

func openLog(t testing.TB, path string, opts Options) (*Log, *State) {
	t.Helper()
	l, st, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l, st
}

func mustAppend(t testing.TB, l *Log, recs ...protocol.Record) {
	t.Helper()
	for _, r := range recs {
		if err := l.Append(r); err != nil {
			t.Fatalf("Append(%v): %v", r, err)
		}
	}
}

func mustClose(t testing.TB, l *Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// reopenState opens path, closes it again and returns what Open found.
func reopenState(t testing.TB, path string) *State {
	t.Helper()
	l, st := openLog(t, path, Options{})
	mustClose(t, l)
	return st
}

// siblings lists the names in path's directory other than path itself.
func siblings(t testing.TB, path string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.Name() != filepath.Base(path) {
			names = append(names, e.Name())
		}
	}
	return names
}
