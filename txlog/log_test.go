package txlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// queuedLen is how many records wait for the writer.
func (l *Log) queuedLen() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.cur.recs)
}

func TestOpenCreatesFile(t *testing.T) {
	path := tempLog(t)
	l, st := openLog(t, path, Options{})
	if st.Epoch != 0 || len(st.Pending) != 0 || st.TornTail != nil {
		t.Errorf("new log state = %+v", st)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Open did not create the file: %v", err)
	}
	mustClose(t, l)
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if err := l.Append(epochRec(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if err := l.AppendAsync(epochRec(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("AppendAsync after Close = %v, want ErrClosed", err)
	}
	if err := l.Compact(); !errors.Is(err, ErrClosed) {
		t.Errorf("Compact after Close = %v, want ErrClosed", err)
	}
}

// All N appenders start together; the writer's first fsync is held until
// the other records are queued. Every record must then be durable after
// at most two write+fsync rounds: one for whoever came first, one for the
// rest (one round if all were queued before the writer woke).
func TestGroupCommit(t *testing.T) {
	const n = 64
	path := tempLog(t)
	var l *Log
	var held atomic.Bool
	opts := Options{failpoint: func(point string) error {
		if point == "sync" && held.CompareAndSwap(false, true) {
			// Records of the first batch are counted once written.
			for int(l.records.Load())+l.queuedLen() < n {
				runtime.Gosched()
			}
		}
		return nil
	}}
	l, _ = openLog(t, path, opts)

	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs <- l.Append(commitRec(fmt.Sprintf("1.%d", i), "k", "p1", "p2"))
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	s := l.Stats()
	if s.Records != n || s.Batches > 2 || s.Fsyncs != s.Batches {
		t.Errorf("stats = %+v, want %d records in at most 2 batches, one fsync each", s, n)
	}
	if s.Fsyncs >= n {
		t.Errorf("%d fsyncs for %d appends: no group commit", s.Fsyncs, n)
	}
	mustClose(t, l)
	if st := reopenState(t, path); len(st.Pending) != n {
		t.Errorf("after reopen %d pending, want %d", len(st.Pending), n)
	}
}

// Appends are durable in order whatever the interleaving: a concurrent mix
// of Append and AppendAsync, then a reopen, finds every record.
func TestConcurrentAppendsAllDurable(t *testing.T) {
	const writers, each = 16, 50
	path := tempLog(t)
	l, _ := openLog(t, path, Options{CompactBytes: 2048})
	mustAppend(t, l, epochRec(1))

	start := make(chan struct{})
	var wg sync.WaitGroup
	var failures atomic.Int32
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range each {
				tx := fmt.Sprintf("1.%d.%d", w, i)
				if l.Append(commitRec(tx, "k", "p1")) != nil {
					failures.Add(1)
				}
				// Keep every tenth pending; end the rest without waiting.
				if i%10 != 0 && l.AppendAsync(endRec(tx)) != nil {
					failures.Add(1)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d appends failed", failures.Load())
	}
	if l.Stats().Compactions == 0 {
		t.Errorf("no automatic compaction: %+v", l.Stats())
	}
	mustClose(t, l)

	st := reopenState(t, path)
	if st.Epoch != 1 || len(st.Pending) != writers*each/10 {
		t.Fatalf("after reopen %s, want %d pending", describe(st), writers*each/10)
	}
	// Each writer's records stay in its own order.
	next := make(map[string]int)
	for _, r := range st.Pending {
		var w, i int
		fmt.Sscanf(r.TxID, "1.%d.%d", &w, &i)
		key := fmt.Sprint(w)
		if i != next[key] {
			t.Errorf("writer %d: pending %s, want 1.%d.%d", w, r.TxID, w, next[key])
		}
		next[key] = i + 10
	}
}

func TestAutomaticCompactionShrinksFile(t *testing.T) {
	path := tempLog(t)
	const budget = 4096
	l, _ := openLog(t, path, Options{CompactBytes: budget})
	mustAppend(t, l, epochRec(1), epochRec(2))
	var written int
	var keep []string
	for i := range 1000 {
		tx := fmt.Sprintf("2.%d", i)
		c, e := commitRec(tx, "user:"+tx, "p1", "p2", "p3"), endRec(tx)
		mustAppend(t, l, c)
		written += len(line(c))
		if i%250 == 7 {
			keep = append(keep, tx)
			continue
		}
		if err := l.AppendAsync(e); err != nil {
			t.Fatal(err)
		}
		written += len(line(e))
	}
	mustAppend(t, l, epochRec(3)) // and wait for everything before it
	s := l.Stats()
	content := len(lines(readFile(t, path)))
	if s.Compactions == 0 || int64(content) != s.Bytes || s.Bytes > budget+128 {
		t.Errorf("after writing %d bytes: file holds %d bytes, stats %+v", written, content, s)
	}
	mustClose(t, l)
	if got, want := describe(reopenState(t, path)), fmt.Sprintf("epoch=3 pending=%s", strings.Join(keep, ",")); got != want {
		t.Errorf("after reopen %s, want %s", got, want)
	}
}

// Live records alone over the budget must not make every batch compact.
func TestNoCompactionWhenMostlyLive(t *testing.T) {
	l, _ := openLog(t, tempLog(t), Options{CompactBytes: 1024})
	defer l.Close()
	for i := range 100 {
		mustAppend(t, l, commitRec(fmt.Sprint(i), "k", "p1"))
	}
	if s := l.Stats(); s.Compactions != 0 || s.Bytes <= 1024 {
		t.Errorf("stats = %+v, want a large file and no compaction", s)
	}
}

// Records appended while a compaction is in progress land in the new file.
func TestAppendsDuringCompaction(t *testing.T) {
	path := tempLog(t)
	inCompaction, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	l, _ := openLog(t, path, Options{CompactBytes: -1, failpoint: func(point string) error {
		if point == "compact-rename" {
			once.Do(func() {
				close(inCompaction)
				<-release
			})
		}
		return nil
	}})
	mustAppend(t, l, epochRec(1))
	for i := range 100 {
		mustAppend(t, l, commitRec(fmt.Sprintf("old.%d", i), "k", "p1"))
		if i >= 10 {
			mustAppend(t, l, endRec(fmt.Sprintf("old.%d", i)))
		}
	}

	compacted := make(chan error)
	go func() { compacted <- l.Compact() }()
	<-inCompaction

	// The writer is inside the compaction: these are queued behind it.
	for i := range 50 {
		if err := l.AppendAsync(commitRec(fmt.Sprintf("async.%d", i), "k", "p1")); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.AppendAsync(endRec("old.0")); err != nil {
		t.Fatal(err)
	}
	start := make(chan struct{})
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			<-start
			errs <- l.Append(commitRec(fmt.Sprintf("sync.%d", i), "k", "p2"))
		}()
	}
	close(start)
	close(release)
	if err := <-compacted; err != nil {
		t.Fatalf("Compact: %v", err)
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	if s := l.Stats(); s.Compactions != 1 {
		t.Errorf("stats = %+v, want one compaction", s)
	}
	mustClose(t, l)

	st := reopenState(t, path)
	got := make(map[string]bool)
	for _, r := range st.Pending {
		got[r.TxID] = true
	}
	want := 9 + 50 + 8
	if len(got) != want || got["old.0"] || !got["old.9"] || !got["async.49"] || !got["sync.7"] {
		t.Errorf("after reopen %d pending (%s), want %d: old.1-9, async.*, sync.*", len(got), describe(st), want)
	}
	if _, err := os.Stat(path + ".compact.tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("compact.tmp left behind: %v", err)
	}
}

func TestLeftoverCompactTmpRemoved(t *testing.T) {
	path := tempLog(t)
	l, _ := openLog(t, path, Options{})
	mustAppend(t, l, epochRec(4), commitRec("4.1", "k", "p1"))
	mustClose(t, l)
	// A compaction that crashed before its rename, half written.
	tmp := path + ".compact.tmp"
	if err := os.WriteFile(tmp, []byte(line(epochRec(4))+"0000"), 0o640); err != nil {
		t.Fatal(err)
	}
	st := reopenState(t, path)
	if got := describe(st); got != "epoch=4 pending=4.1" {
		t.Errorf("state %s", got)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover %s not removed: %v", tmp, err)
	}
}

// A failed write or fsync fails the log for good: a later fsync must never
// be taken to cover an earlier failed one.
func TestFailStop(t *testing.T) {
	for _, point := range []string{"write", "sync", "compact-sync", "compact-rename"} {
		t.Run(point, func(t *testing.T) {
			path := tempLog(t)
			injected := errors.New("injected I/O error")
			var armed atomic.Bool
			l, _ := openLog(t, path, Options{CompactBytes: -1, failpoint: func(p string) error {
				if p == point && armed.Load() {
					return injected
				}
				return nil
			}})
			mustAppend(t, l, epochRec(1), commitRec("1.1", "k", "p1"))
			armed.Store(true)

			var err error
			if point == "write" || point == "sync" {
				err = l.Append(commitRec("1.2", "k", "p1"))
			} else {
				err = l.Compact()
			}
			if !errors.Is(err, ErrFailed) || !errors.Is(err, injected) {
				t.Fatalf("failing call = %v, want ErrFailed wrapping the injected error", err)
			}
			armed.Store(false) // the disk is fine again; the log must stay failed
			checkFailed(t, l, injected)
			if _, err := os.Stat(path + ".compact.tmp"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("compact.tmp left behind: %v", err)
			}
			if st := reopenState(t, path); st.Epoch != 1 || len(st.Pending) == 0 || st.Pending[0].TxID != "1.1" {
				t.Errorf("after reopen %s, want epoch 1 with 1.1 pending", describe(st))
			}
		})
	}
}

// The descriptor is closed under the log's feet, as if the disk went away.
func TestFailStopClosedDescriptor(t *testing.T) {
	path := tempLog(t)
	l, _ := openLog(t, path, Options{})
	mustAppend(t, l, epochRec(1))
	l.f.Close()
	err := l.Append(commitRec("1.1", "k", "p1"))
	if !errors.Is(err, ErrFailed) || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Append = %v, want ErrFailed wrapping os.ErrClosed", err)
	}
	checkFailed(t, l, os.ErrClosed)
}

func checkFailed(t *testing.T, l *Log, cause error) {
	t.Helper()
	for name, err := range map[string]error{
		"Append":      l.Append(commitRec("1.3", "k", "p1")),
		"AppendAsync": l.AppendAsync(endRec("1.1")),
		"Compact":     l.Compact(),
		"Close":       l.Close(),
	} {
		if !errors.Is(err, ErrFailed) || !errors.Is(err, cause) {
			t.Errorf("%s on a failed log = %v, want ErrFailed wrapping %v", name, err, cause)
		}
	}
}

// BenchmarkAppendParallel measures Append from many goroutines, the
// coordinator's pattern: a durable commit, then an end that is not waited
// for. fsyncs/op below 1 is group commit at work.
func BenchmarkAppendParallel(b *testing.B) {
	for _, par := range []int{1, 64} {
		b.Run(fmt.Sprintf("goroutines=%dxGOMAXPROCS", par), func(b *testing.B) {
			l, _ := openLog(b, tempLog(b), Options{})
			defer l.Close()
			mustAppend(b, l, epochRec(1))
			var seq atomic.Uint64
			before := l.Stats()
			b.SetParallelism(par)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					tx := fmt.Sprintf("1.%d", seq.Add(1))
					if err := l.Append(commitRec(tx, "user:42", "p1", "p2", "p3")); err != nil {
						b.Error(err)
						return
					}
					if err := l.AppendAsync(endRec(tx)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			s := l.Stats()
			b.ReportMetric(float64(s.Fsyncs-before.Fsyncs)/float64(b.N), "fsyncs/op")
			b.ReportMetric(float64(s.Records-before.Records)/float64(s.Batches-before.Batches), "records/batch")
		})
	}
}

// A second Open of a log that is open fails; after Close it succeeds.
func TestOpenIsExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tx.log")
	l, _, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(path, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, _, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	l.Close()
}

// A lazy record shares the fsync of the next eager one; alone, it gets its
// own after the linger; Flush ends the linger at once.
func TestQueueLazy(t *testing.T) {
	within := func(t *testing.T, what string, wait func() error) {
		t.Helper()
		errc := make(chan error, 1)
		go func() { errc <- wait() }()
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		case <-time.After(10 * time.Second): // a bound on a hang, not a timing assertion
			t.Fatalf("%s: not durable", what)
		}
	}

	t.Run("shares an fsync", func(t *testing.T) {
		path := tempLog(t)
		l, _ := openLog(t, path, Options{Linger: time.Hour})
		lazy := l.QueueLazy(commitRec("1.1", "k", "p1"))
		if err := l.Append(commitRec("1.2", "k", "p1")); err != nil {
			t.Fatal(err)
		}
		within(t, "lazy record", lazy)
		if s := l.Stats(); s.Fsyncs != 1 || s.Records != 2 {
			t.Errorf("stats = %+v, want 2 records and 1 fsync", s)
		}
		mustClose(t, l)
	})
	t.Run("alone, after the linger", func(t *testing.T) {
		path := tempLog(t)
		l, _ := openLog(t, path, Options{Linger: time.Millisecond})
		within(t, "lazy record", l.QueueLazy(commitRec("1.1", "k", "p1")))
		if s := l.Stats(); s.Fsyncs != 1 {
			t.Errorf("stats = %+v, want 1 fsync", s)
		}
		mustClose(t, l)
		if st := reopenState(t, path); len(st.Pending) != 1 {
			t.Errorf("after reopen: %d pending, want 1", len(st.Pending))
		}
	})
	t.Run("flushed", func(t *testing.T) {
		l, _ := openLog(t, tempLog(t), Options{Linger: time.Hour})
		wait := l.QueueLazy(commitRec("1.1", "k", "p1"))
		l.Flush()
		within(t, "flushed lazy record", wait)
		mustClose(t, l)
	})
}

// QueueThen tells its caller once the record is durable (after the fsync
// that made it so: it is in the file on reopen), or why it cannot be;
// never from inside the call; and lazily when asked.
func TestQueueThen(t *testing.T) {
	then := func() (func(error), <-chan error) {
		c := make(chan error, 1)
		return func(err error) { c <- err }, c
	}
	told := func(t *testing.T, c <-chan error) error {
		t.Helper()
		select {
		case err := <-c:
			return err
		case <-time.After(10 * time.Second): // a bound on a hang, not a timing assertion
			t.Fatal("never told")
			return nil
		}
	}
	path := tempLog(t)
	l, _ := openLog(t, path, Options{Linger: time.Hour})
	mustAppend(t, l, epochRec(1))
	f1, c1 := then()
	l.QueueThen(commitRec("1.1", "k", "p1"), false, f1)
	f2, c2 := then()
	l.QueueThen(commitRec("1.2", "k", "p1"), true, f2) // lazy: waits for 1.3's fsync
	if err := told(t, c1); err != nil {
		t.Fatal(err)
	}
	f3, c3 := then()
	l.QueueThen(commitRec("1.3", "k", "p1"), false, f3)
	for _, c := range []<-chan error{c2, c3} {
		if err := told(t, c); err != nil {
			t.Fatal(err)
		}
	}
	if s := l.Stats(); s.Fsyncs != 3 { // the epoch's, 1.1's, and 1.2's with 1.3's
		t.Errorf("stats = %+v, want 3 fsyncs", s)
	}
	mustClose(t, l)
	if st := reopenState(t, path); len(st.Pending) != 3 {
		t.Errorf("after reopen %s, want 3 pending", describe(st))
	}
	f4, c4 := then()
	l.QueueThen(commitRec("1.4", "k", "p1"), false, f4) // closed: told why, from elsewhere
	if err := told(t, c4); !errors.Is(err, ErrClosed) {
		t.Fatalf("queued on a closed log: told %v, want ErrClosed", err)
	}
}

// A lazy COMMIT lingers for the next record that wants an fsync; an END
// (AppendAsync) arriving meanwhile joins it without ending the wait, so
// that COMMIT, END and STAGED share one fsync. Under serial load the END
// of one transaction comes just after the COMMIT of the next.
func TestAsyncRecordDoesNotEndTheLinger(t *testing.T) {
	lingering := make(chan struct{}, 8)
	synced := make(chan struct{}, 8)
	l, _ := openLog(t, tempLog(t), Options{Linger: time.Hour, failpoint: func(point string) error {
		switch point {
		case "linger":
			lingering <- struct{}{}
		case "sync":
			synced <- struct{}{}
		}
		return nil
	}})
	commit := l.QueueLazy(commitRec("1.2", "b", "p1"))
	<-lingering
	if err := l.AppendAsync(endRec("1.1")); err != nil {
		t.Fatal(err)
	}
	// The END does not even wake the writer (enqueueLocked): wake it as
	// anything else might, to see what it makes of the batch now.
	l.signal()
	select { // the writer either waits again or writes the batch
	case <-lingering:
	case <-synced:
		t.Fatal("an END ended the COMMIT's linger: it got an fsync of its own")
	}
	staged := l.Queue(stagedRec("1.3", "c", "p1"))
	if err := staged(); err != nil {
		t.Fatal(err)
	}
	if err := commit(); err != nil {
		t.Fatal(err)
	}
	if n := len(synced); n != 1 {
		t.Fatalf("%d fsyncs for a lazy COMMIT, an END and a STAGED, want 1", n)
	}
}

// With SyncInKernel the log's fsyncs go to the kernel (package fsync),
// from the file it opened and from the one a compaction made.
func TestSyncInKernelAcrossCompaction(t *testing.T) {
	l, _ := openLog(t, tempLog(t), Options{CompactBytes: 4096, SyncInKernel: true})
	defer l.Close()
	inKernel := func(when string) {
		t.Helper()
		if runtime.GOOS == "linux" && (l.f.sync == nil || !l.f.sync.Async()) {
			t.Fatalf("%s: the log's fsyncs are not handed to the kernel", when)
		}
	}
	mustAppend(t, l, epochRec(1))
	inKernel("after open")
	for i := range 1000 {
		tx := fmt.Sprintf("1.%d", i)
		mustAppend(t, l, commitRec(tx, "k", "p1"))
		if err := l.AppendAsync(endRec(tx)); err != nil {
			t.Fatal(err)
		}
	}
	mustAppend(t, l, epochRec(2))
	if s := l.Stats(); s.Compactions == 0 {
		t.Fatalf("no compaction: %+v", s)
	}
	inKernel("after a compaction")
}
