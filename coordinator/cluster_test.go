package coordinator

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twopc/twopc/participant"
	"github.com/twopc/twopc/protocol"
	"github.com/twopc/twopc/txlog"
)

var bg = context.Background()

// cluster is a coordinator and three participants in one process: real
// SQLite files and a real txlog file, called directly instead of over
// sockets, so each can be killed and restarted at an exact point. The
// coordinator's whole world (its log and its participants) goes through
// env, which can crash it after any number of steps.
type cluster struct {
	t       *testing.T
	dir     string
	parts   []*swappable
	logPath string
	log     *txlog.Log
	env     *env
	c       *Coordinator
	// cacheBytes is the coordinator's value cache; on in every test so
	// that each scenario exercises it.
	cacheBytes int64
	// lockTimeout is the coordinator's LockTimeout (0: the default).
	lockTimeout time.Duration
	// excludeAfter is the coordinator's ExcludeAfter (0: never).
	excludeAfter time.Duration
	// autoRejoin lets the coordinator catch excluded participants up by
	// itself; without it, tests call catchUp.
	autoRejoin bool
	// catchUpPage is the coordinator's page size for a catch-up (0: the
	// default).
	catchUpPage int
	// sweepEvery is the coordinator's SweepEvery (0: the default).
	sweepEvery time.Duration
	// logWrap, if set, wraps the decision log the coordinator gets, and
	// fatal replaces the Fatal that fails the test.
	logWrap func(*env) DecisionLog
	fatal   func(error)
}

// swappable is a participant whose process can be killed (its Store
// closed: calls fail like a dead socket) and restarted from its file.
type swappable struct {
	name  string
	path  string
	store atomic.Pointer[participant.Store]
	// afterCommit, if set, runs after a successful commit, before the ack.
	afterCommit func() error
	// beforePrepare and afterPrepare, if set, run around a prepare.
	beforePrepare func(txid string)
	afterPrepare  func()
	// beforeInstall, if set, runs before a catch-up step is applied.
	beforeInstall func(*protocol.Install)
}

var errDown = errors.New("participant is down")

func (s *swappable) get() (*participant.Store, error) {
	st := s.store.Load()
	if st == nil {
		return nil, fmt.Errorf("%s: %w", s.name, errDown)
	}
	return st, nil
}

func (s *swappable) Prepare(ctx context.Context, id string, t *protocol.Txn) (protocol.Vote, error) {
	if f := s.beforePrepare; f != nil {
		f(id)
	}
	st, err := s.get()
	if err != nil {
		return protocol.Vote{}, err
	}
	v, err := st.Prepare(ctx, id, t)
	if f := s.afterPrepare; f != nil && err == nil {
		f()
	}
	return v, err
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

func (s *swappable) Read(ctx context.Context, keys ...string) ([]protocol.KeyState, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	return st.Read(ctx, keys...)
}

func (s *swappable) PreparedTxs(ctx context.Context) ([]protocol.PreparedTx, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	return st.PreparedTxs(ctx)
}

func (s *swappable) Scan(ctx context.Context, after string, limit int) ([]protocol.KeyState, bool, error) {
	st, err := s.get()
	if err != nil {
		return nil, false, err
	}
	return st.Scan(ctx, after, limit)
}

func (s *swappable) Install(ctx context.Context, in *protocol.Install) error {
	if f := s.beforeInstall; f != nil {
		f(in)
	}
	st, err := s.get()
	if err != nil {
		return err
	}
	return st.Install(ctx, in)
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
	cl.start(-1)
	return cl
}

// start recovers a coordinator from the log file, as the binary does; it
// crashes after crashAfter steps (never if negative).
func (cl *cluster) start(crashAfter int) {
	cl.t.Helper()
	log, state, err := txlog.Open(cl.logPath, txlog.Options{})
	if err != nil {
		cl.t.Fatal(err)
	}
	epoch := state.Epoch + 1
	if err := log.Append(protocol.Record{Kind: protocol.KindEpoch, Epoch: epoch}); err != nil {
		cl.t.Fatal(err)
	}
	cl.env = &env{log: log, crashAfter: int64(crashAfter), crashed: make(chan struct{})}
	var members []Member
	for i, p := range cl.parts[:3] { // as configured; others are added (addPart)
		var part Participant = &envParticipant{cl.env, p}
		if i%2 == 0 { // p1 and p3 take calls as peer.Client does, p2 the plain way
			part = goParticipant{part}
		}
		members = append(members, Member{Name: p.name, URL: p.path, Participant: part})
	}
	var joined []Joined
	for _, j := range state.Joined {
		joined = append(joined, Joined{Name: j.Name, URL: j.URL})
	}
	dial := func(url string) (Participant, error) {
		for _, p := range cl.parts {
			if p.path == url {
				return &envParticipant{cl.env, p}, nil
			}
		}
		return nil, fmt.Errorf("no participant at %s", url)
	}
	var dlog DecisionLog = cl.env
	if cl.logWrap != nil {
		dlog = cl.logWrap(cl.env)
	}
	fatal := func(err error) {
		if !cl.env.isCrashed() {
			cl.t.Errorf("decision log failed: %v", err)
		}
	}
	if cl.fatal != nil {
		fatal = cl.fatal
	}
	c, err := New(Config{
		Members: members, Log: dlog, Epoch: epoch, Pending: state.Pending, Excluded: state.Excluded, ExcludeAfter: cl.excludeAfter,
		Joined: joined, Removed: state.Removed, Dial: dial,
		PrepareTimeout: 5 * time.Second, RetryInterval: time.Millisecond, ReadCacheBytes: cl.cacheBytes, LockTimeout: cl.lockTimeout,
		manualRejoin: !cl.autoRejoin, catchUpPage: cl.catchUpPage, SweepEvery: cl.sweepEvery,
		Fatal: fatal,
	})
	if err != nil {
		cl.t.Fatal(err)
	}
	cl.log, cl.c = log, c
}

// stop ends the coordinator like kill -9 would, as far as the log file is
// concerned: what was made durable stays, the rest is lost.
func (cl *cluster) stop() {
	if cl.c == nil {
		return
	}
	cl.env.crash() // nothing more reaches the file or a participant
	cl.c.Close()
	cl.log.Close()
	cl.c = nil
}

// restart kills the coordinator and starts a new one from its log.
func (cl *cluster) restart() {
	cl.stop()
	cl.start(-1)
}

// settle waits until the coordinator has finished its background work
// (every decision delivered) and every participant has resolved what it
// still holds prepared, as their resolvers would.
func (cl *cluster) settle() {
	cl.t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a bound on a hang, not a timing assertion
	for {
		st := cl.c.Status(bg)
		if st.InDoubt == 0 && st.Active == 0 {
			break
		}
		if time.Now().After(deadline) {
			cl.t.Fatalf("coordinator never settled: %+v", st)
		}
		time.Sleep(time.Millisecond) // polling a condition, bounded above
	}
	for _, p := range cl.parts {
		if cl.c.roster.Load().byName[p.name] == nil {
			continue
		}
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
// everywhere ("" = absent). Everywhere is every member: a participant
// removed for good is not checked.
func (cl *cluster) check(want map[string]string) {
	cl.t.Helper()
	var first protocol.Digest
	i := -1
	for _, p := range cl.parts {
		if cl.c.roster.Load().byName[p.name] == nil {
			continue
		}
		i++
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
			ks, err := st.Read(bg, k)
			if err != nil {
				cl.t.Fatal(err)
			}
			if got := string(ks[0].Entry.Value.Data); ks[0].Entry.Found != (v != "") || got != v {
				cl.t.Errorf("%s: %q = %q (found %v), want %q", p.name, k, got, ks[0].Entry.Found, v)
			}
		}
	}
	if n := cl.c.counts.inDoubt.Load(); n != 0 {
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

func putTxn(key, value string) *protocol.Txn {
	return &protocol.Txn{Success: []protocol.Op{{Kind: protocol.OpPut, Key: key, Value: protocol.Value{Data: []byte(value)}}}}
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
		if v, err := st.Prepare(bg, tx, putTxn(key, value)); err != nil || v.Kind != protocol.VoteYes {
			cl.t.Fatalf("prepare at %s: %+v %v", p.name, v, err)
		}
	}
}

func (cl *cluster) put(key, value string) error {
	return cl.c.Put(bg, key, protocol.Value{Data: []byte(value)})
}

func (cl *cluster) mustPut(key, value string) {
	cl.t.Helper()
	if err := cl.put(key, value); err != nil {
		cl.t.Fatalf("put %q: %v", key, err)
	}
}

// env is the coordinator's world in these tests: its decision log and
// its calls to participants. It counts the steps the coordinator takes in
// it (queueing a record, waiting for one, starting or finishing a call)
// and, after crashAfter of them, crashes: from then on nothing more is
// written and no call gets through, as after kill -9. A queued record
// reaches the file only when someone waits for it or for a later one (as
// one fsync covers both), so a coordinator that answered before its
// record was durable fails the tests.
type env struct {
	log        *txlog.Log
	crashAfter int64 // negative: never
	steps      atomic.Int64
	crashOnce  sync.Once
	crashed    chan struct{}

	mu   sync.Mutex
	held []protocol.Record // queued and not yet passed on, in order
	next int               // sequence number of held[0]
}

var errCrashed = errors.New("coordinator crashed (test)")

// step counts one step and reports whether the coordinator is dead.
func (e *env) step() bool {
	if n := e.steps.Add(1); e.crashAfter >= 0 && n > e.crashAfter {
		e.crash()
	}
	return e.isCrashed()
}

func (e *env) crash() { e.crashOnce.Do(func() { close(e.crashed) }) }

func (e *env) isCrashed() bool {
	select {
	case <-e.crashed:
		return true
	default:
		return false
	}
}

func (e *env) queue(rec protocol.Record) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.held = append(e.held, rec)
	return e.next + len(e.held) - 1
}

// durable passes on every held record up to number seq and syncs them.
func (e *env) durable(seq int) error {
	if e.step() {
		return errCrashed
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if seq < e.next {
		return nil // a later record's wait made it durable
	}
	n := seq - e.next + 1
	for _, rec := range e.held[:n-1] {
		if err := e.log.AppendAsync(rec); err != nil {
			return err
		}
	}
	err := e.log.Append(e.held[n-1])
	e.held, e.next = e.held[n:], e.next+n
	return err
}

func (e *env) Queue(rec protocol.Record) func() error {
	if e.step() {
		return func() error { return errCrashed }
	}
	seq := e.queue(rec)
	return func() error { return e.durable(seq) }
}

// QueueThen reports durability as txlog.Log does, from a goroutine.
func (e *env) QueueThen(rec protocol.Record, _ bool, then func(error)) {
	wait := e.Queue(rec)
	go func() { then(wait()) }()
}

func (e *env) Append(rec protocol.Record) error           { return e.Queue(rec)() }
func (e *env) QueueLazy(rec protocol.Record) func() error { return e.Queue(rec) }
func (e *env) Flush()                                     {}
func (e *env) AppendAsync(rec protocol.Record) error {
	if e.step() {
		return errCrashed
	}
	e.queue(rec)
	return nil
}

// envParticipant is a participant as seen through env: a call counts a
// step when it starts and when its answer comes back, and fails once the
// coordinator is dead (its effect at the participant may stay).
type envParticipant struct {
	e *env
	*swappable
}

func call[T any](e *env, f func() (T, error)) (T, error) {
	var zero T
	if e.step() {
		return zero, errCrashed
	}
	v, err := f()
	if e.step() {
		return zero, errCrashed
	}
	return v, err
}

func (p *envParticipant) Prepare(ctx context.Context, id string, t *protocol.Txn) (protocol.Vote, error) {
	return call(p.e, func() (protocol.Vote, error) { return p.swappable.Prepare(ctx, id, t) })
}

func (p *envParticipant) Commit(ctx context.Context, id string) error {
	_, err := call(p.e, func() (struct{}, error) { return struct{}{}, p.swappable.Commit(ctx, id) })
	return err
}

func (p *envParticipant) Abort(ctx context.Context, id string) error {
	_, err := call(p.e, func() (struct{}, error) { return struct{}{}, p.swappable.Abort(ctx, id) })
	return err
}

func (p *envParticipant) Read(ctx context.Context, keys ...string) ([]protocol.KeyState, error) {
	return call(p.e, func() ([]protocol.KeyState, error) { return p.swappable.Read(ctx, keys...) })
}

func (p *envParticipant) PreparedTxs(ctx context.Context) ([]protocol.PreparedTx, error) {
	return call(p.e, func() ([]protocol.PreparedTx, error) { return p.swappable.PreparedTxs(ctx) })
}

func (p *envParticipant) Scan(ctx context.Context, after string, limit int) ([]protocol.KeyState, bool, error) {
	type page struct {
		states []protocol.KeyState
		more   bool
	}
	pg, err := call(p.e, func() (page, error) {
		states, more, err := p.swappable.Scan(ctx, after, limit)
		return page{states, more}, err
	})
	return pg.states, pg.more, err
}

func (p *envParticipant) Install(ctx context.Context, in *protocol.Install) error {
	_, err := call(p.e, func() (struct{}, error) { return struct{}{}, p.swappable.Install(ctx, in) })
	return err
}

// goParticipant makes a Participant asynchronous (asyncParticipant), a
// goroutine per call, so that the cluster's coordinator drives some of
// its participants as it drives peer.Client.
type goParticipant struct{ Participant }

var _ asyncParticipant = goParticipant{}

func (p goParticipant) Go(call protocol.Call, deadline time.Time, done func(protocol.CallResult)) {
	go func() {
		ctx, cancel := context.WithDeadline(bg, deadline)
		defer cancel()
		done(callWaiting(ctx, p.Participant, call))
	}()
}
