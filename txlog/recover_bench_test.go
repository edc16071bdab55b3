package txlog

import (
	"fmt"
	"github.com/twopc/twopc/protocol"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkOpenMillion measures recovery: Open (read, check and replay)
// of a log of 1,000,000 records, as a coordinator that never compacted
// would leave: 500,000 committed transactions with their ends, the last
// 1,000 without (still to be re-sent).
func BenchmarkOpenMillion(b *testing.B) {
	path := filepath.Join(b.TempDir(), "tx.log")
	var buf []byte
	buf = appendLine(buf, protocol.Record{Kind: protocol.KindEpoch, Epoch: 1})
	parts := []string{"p1", "p2", "p3"}
	const txs = 500_000
	for i := range txs {
		id := fmt.Sprintf("1.%d", i)
		buf = appendLine(buf, protocol.Record{Kind: protocol.KindCommit, TxID: id, Participants: parts, Keys: []string{fmt.Sprintf("key%08d", i)}})
		if i < txs-1000 {
			buf = appendLine(buf, protocol.Record{Kind: protocol.KindEnd, TxID: id})
		}
	}
	for i := range 999 { // to make 1,000,000 lines with the epoch
		buf = appendLine(buf, protocol.Record{Kind: protocol.KindEnd, TxID: fmt.Sprintf("0.%d", i)})
	}
	if err := os.WriteFile(path, buf, 0o640); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for b.Loop() {
		l, st, err := Open(path, Options{CompactBytes: -1})
		if err != nil {
			b.Fatal(err)
		}
		if len(st.Pending) != 1000 {
			b.Fatalf("%d pending, want 1000", len(st.Pending))
		}
		l.Close()
	}
}
