package coordinator

import (
	"context"
	"fmt"
	"github.com/twopc/twopc/protocol"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twopc/twopc/participant"
	"github.com/twopc/twopc/txlog"
)

var bg = context.Background()

// cluster is a coordinator and three participants in one process: real
// SQLite files and a real txlog file, called directly instead of over
// sockets, so each can be killed and restarted at an exact point.
type cluster struct {
	t       *testing.T
	dir     string
	parts   []*swappable
	logPath string
	log     *txlog.Log
	c       *Coordinator
	// cacheBytes is the coordinator's value cache; on in every test so
	// that each scenario exercises it.
	cacheBytes int64
	// lockTimeout is the coordinator's LockTimeout (0: the default).
	lockTimeout time.Duration
	crashLog    *crashLog // between c and log
}

// swappable is a participant whose process can be killed (its Store
// closed: calls fail like a dead socket) and restarted from its file.
type swappable struct {
	name  string
	path  string
	store atomic.Pointer[participant.Store]
	// afterCommit, if set, runs after a successful commit, before the ack.
	afterCommit func() error
}

func (s *swappable) get() (*participant.Store, error) {
	st := s.store.Load()
	if st == nil {
		return nil, fmt.Errorf("%s is down", s.name)
	}
	return st, nil
}

func (s *swappable) Prepare(ctx context.Context, id string, w participant.Write) (participant.Vote, error) {
	st, err := s.get()
	if err != nil {
		return participant.Vote{}, err
	}
	return st.Prepare(ctx, id, w)
}

func (s *swappable) Commit(ctx context.Context, id string) error {
	st, err := s.get()
	if err != nil {
		return err
	}
	if err := st.Commit(ctx, id); err != nil {
		return err
	}
	if f := s.afterCommit; f != nil {
		return f()
	}
	return nil
}

func (s *swappable) Abort(ctx context.Context, id string) error {
	st, err := s.get()
	if err != nil {
		return err
	}
	return st.Abort(ctx, id)
}

func (s *swappable) Read(ctx context.Context, key string) (participant.ReadResult, error) {
	st, err := s.get()
	if err != nil {
		return participant.ReadResult{}, err
	}
	return st.Read(ctx, key)
}

func (s *swappable) PreparedTxs(ctx context.Context) ([]participant.PreparedTx, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	return st.PreparedTxs(ctx)
}

// kill closes the store; calls fail until restart.
func (s *swappable) kill() {
	if st := s.store.Swap(nil); st != nil {
		st.Close()
	}
}

func (s *swappable) restart(t *testing.T) {
	s.kill()
	st, err := participant.Open(s.path, participant.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.store.Store(st)
}

func newCluster(t *testing.T) *cluster {
	cl := &cluster{t: t, dir: t.TempDir(), cacheBytes: 1 << 20}
	cl.logPath = filepath.Join(cl.dir, "coordinator.txlog")
	for i := 1; i <= 3; i++ {
		p := &swappable{name: fmt.Sprintf("p%d", i), path: filepath.Join(cl.dir, fmt.Sprintf("p%d.db", i))}
		p.restart(t)
		cl.parts = append(cl.parts, p)
	}
	t.Cleanup(func() {
		cl.stop()
		for _, p := range cl.parts {
			p.kill()
		}
	})
	cl.start(nil)
	return cl
}

// start recovers a coordinator from the log file, as the binary does.
func (cl *cluster) start(failpoint func(string) bool) {
	cl.t.Helper()
	log, state, err := txlog.Open(cl.logPath, txlog.Options{})
	if err != nil {
		cl.t.Fatal(err)
	}
	epoch := state.Epoch + 1
	if err := log.Append(protocol.Record{Kind: protocol.KindEpoch, Epoch: epoch}); err != nil {
		cl.t.Fatal(err)
	}
	var members []Member
	for _, p := range cl.parts {
		members = append(members, Member{Name: p.name, Participant: p})
	}
	cl.crashLog = &crashLog{log: log}
	c, err := New(Config{
		Members: members, Log: cl.crashLog, Epoch: epoch, Pending: state.Pending,
		PrepareTimeout: 5 * time.Second, RetryInterval: time.Millisecond, ReadCacheBytes: cl.cacheBytes, LockTimeout: cl.lockTimeout,
		Fatal:     func(err error) { cl.t.Errorf("decision log failed: %v", err) },
		failpoint: failpoint,
	})
	if err != nil {
		cl.t.Fatal(err)
	}
	cl.crashLog.coord.Store(c)
	cl.log, cl.c = log, c
}

// crashLog stands between the coordinator and its txlog in these tests,
// and keeps what a crash would keep: a record reaches the file only when
// someone waits for it or for a later one (as one fsync covers both),
// and nothing does once the coordinator is dead. Closing the real log at
// a simulated crash would otherwise keep every queued record, and a
// coordinator that answered before its record was durable would pass.
type crashLog struct {
	log   *txlog.Log
	coord atomic.Pointer[Coordinator]

	mu   sync.Mutex
	held []protocol.Record // queued and not yet passed on, in order
	next int               // sequence number of held[0]
}

func (l *crashLog) queue(rec protocol.Record) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held = append(l.held, rec)
	return l.next + len(l.held) - 1
}

// queued returns the number of the last record queued.
func (l *crashLog) queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next + len(l.held) - 1
}

// durable passes on every held record up to number seq and syncs them.
func (l *crashLog) durable(seq int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if seq < l.next {
		return nil // a later record's wait made it durable
	}
	if c := l.coord.Load(); c != nil && c.dead.Load() {
		return errCrashed
	}
	n := seq - l.next + 1
	for _, rec := range l.held[:n-1] {
		if err := l.log.AppendAsync(rec); err != nil {
			return err
		}
	}
	err := l.log.Append(l.held[n-1])
	l.held, l.next = l.held[n:], l.next+n
	return err
}

func (l *crashLog) Append(rec protocol.Record) error { return l.durable(l.queue(rec)) }
func (l *crashLog) Queue(rec protocol.Record) func() error {
	seq := l.queue(rec)
	return func() error { return l.durable(seq) }
}
func (l *crashLog) QueueLazy(rec protocol.Record) func() error { return l.Queue(rec) }
func (l *crashLog) Flush()                                     {}
func (l *crashLog) AppendAsync(rec protocol.Record) error {
	l.queue(rec)
	return nil
}

// stop ends the coordinator like kill -9 would, as far as the log file is
// concerned: what was written stays written.
func (cl *cluster) stop() {
	if cl.c != nil {
		cl.c.Close()
		if !cl.c.dead.Load() { // a clean stop: what is queued is written
			cl.crashLog.durable(cl.crashLog.queued())
		}
		cl.log.Close()
		cl.c = nil
	}
}

// restart kills the coordinator and starts a new one from its log.
func (cl *cluster) restart() {
	cl.stop()
	cl.start(nil)
}

// settle waits until the coordinator has finished its background work
// (every decision delivered) and every participant has resolved what it
// still holds prepared, as their resolvers would.
func (cl *cluster) settle() {
	cl.t.Helper()
	cl.c.wg.Wait()
	for _, p := range cl.parts {
		st, err := p.get()
		if err != nil {
			cl.t.Fatal(err)
		}
		if _, err := st.Resolve(bg, cl.c, 0); err != nil {
			cl.t.Fatal(err)
		}
	}
}

// check asserts the invariants: replicas identical, nothing prepared, no
// transaction in doubt, and each key in want has exactly that value
// everywhere ("" = absent).
func (cl *cluster) check(want map[string]string) {
	cl.t.Helper()
	var first participant.Digest
	for i, p := range cl.parts {
		st, err := p.get()
		if err != nil {
			cl.t.Fatal(err)
		}
		d, err := st.Digest(bg)
		if err != nil {
			cl.t.Fatal(err)
		}
		if d.Prepared != 0 {
			cl.t.Errorf("%s still holds %d prepared transactions", p.name, d.Prepared)
		}
		if i == 0 {
			first = d
		} else if d != first {
			cl.t.Errorf("replicas diverge: p1 %+v, %s %+v", first, p.name, d)
		}
		for k, v := range want {
			r, err := st.Read(bg, k)
			if err != nil {
				cl.t.Fatal(err)
			}
			if got := string(r.Value.Data); r.Found != (v != "") || got != v {
				cl.t.Errorf("%s: %q = %q (found %v), want %q", p.name, k, got, r.Found, v)
			}
		}
	}
	if n := cl.c.inDoubt.Load(); n != 0 {
		cl.t.Errorf("%d transactions still in doubt", n)
	}
}

// allParts names the cluster's participants, as log records do.
var allParts = []string{"p1", "p2", "p3"}

// appendRecords writes recs to the log of the stopped coordinator, as an
// earlier life would have left them.
func (cl *cluster) appendRecords(recs ...protocol.Record) {
	cl.t.Helper()
	log, _, err := txlog.Open(cl.logPath, txlog.Options{})
	if err != nil {
		cl.t.Fatal(err)
	}
	defer log.Close()
	for _, rec := range recs {
		if err := log.Append(rec); err != nil {
			cl.t.Fatal(err)
		}
	}
}

// prepareAt has each of parts vote YES for tx writing key=value, as if an
// earlier life's prepare had reached them.
func (cl *cluster) prepareAt(parts []*swappable, tx, key, value string) {
	cl.t.Helper()
	for _, p := range parts {
		st, err := p.get()
		if err != nil {
			cl.t.Fatal(err)
		}
		w := participant.Write{Key: key, Op: participant.OpPut, Value: participant.Value{Data: []byte(value)}}
		if v, err := st.Prepare(bg, tx, w); err != nil || !v.Yes {
			cl.t.Fatalf("prepare at %s: %+v %v", p.name, v, err)
		}
	}
}

func (cl *cluster) put(key, value string) error {
	return cl.c.Put(bg, key, participant.Value{Data: []byte(value)})
}

func (cl *cluster) mustPut(key, value string) {
	cl.t.Helper()
	if err := cl.put(key, value); err != nil {
		cl.t.Fatalf("put %q: %v", key, err)
	}
}

// trigger returns a failpoint that fires once at point, and a channel
// closed when it has.
func trigger(point string, crash bool, also func()) (func(string) bool, <-chan struct{}) {
	fired := make(chan struct{})
	var once sync.Once
	return func(p string) bool {
		if p != point {
			return false
		}
		hit := false
		once.Do(func() {
			hit = true
			if also != nil {
				also()
			}
			close(fired)
		})
		return hit && crash
	}, fired
}

func waitFired(t *testing.T, fired <-chan struct{}, point string) {
	t.Helper()
	select {
	case <-fired:
	case <-time.After(10 * time.Second): // a bound on a hang, not a timing assertion
		t.Fatalf("failpoint %s never reached", point)
	}
}

func (s *swappable) writeOf(key string) participant.Write {
	return participant.Write{Key: key, Op: participant.OpPut, Value: participant.Value{Data: []byte("stale")}}
}
