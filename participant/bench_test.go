package participant

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twopc/twopc/protocol"
)

// BenchmarkWrite prepares and commits transactions of 1 and 8 puts of
// 64-byte values on random keys of 100,000, from 16 goroutines, as the
// coordinator's batches would, and reports the process's CPU per
// transaction, which a shared machine's noise moves far less than time:
//
//	go test -run - -bench Write -count 6 ./participant
func BenchmarkWrite(b *testing.B) {
	for _, puts := range []int{1, 8} {
		for _, cache := range []int{0, -1} {
			name := fmt.Sprintf("puts=%d/cache=%v", puts, cache == 0)
			b.Run(name, func(b *testing.B) { benchWrite(b, puts, Options{KVCacheBytes: cache}) })
		}
	}
}

func benchWrite(b *testing.B, puts int, opts Options) {
	s, err := Open(filepath.Join(b.TempDir(), "p.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var seq atomic.Int64
	value := protocol.Value{Data: make([]byte, 64)}
	b.SetParallelism(8)
	b.ResetTimer()
	start := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(uint64(seq.Add(1<<32)), 1))
		for pb.Next() {
			t := &protocol.Txn{}
			for range puts {
				t.Success = append(t.Success, protocol.Op{Kind: protocol.OpPut, Key: fmt.Sprintf("k%06d", rng.IntN(100_000)), Value: value})
			}
			txid := fmt.Sprintf("1.%d", seq.Add(1))
			v, err := s.Prepare(ctx, txid, t)
			if err != nil {
				b.Error(err)
				return
			}
			if v.Kind == protocol.VoteYes {
				err = s.Commit(ctx, txid)
			} else {
				err = s.Abort(ctx, txid)
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime is the CPU this process has spent, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
