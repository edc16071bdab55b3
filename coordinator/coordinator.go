package coordinator

import (
	"context"
	"errors"
	"fmt"
	"github.com/twopc/twopc/protocol"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twopc/twopc/participant"
	"github.com/twopc/twopc/txlog"
)

// Participant is the coordinator's view of one replica. Calls may run
// concurrently. An error means the call's effect is unknown, except that
// Prepare never returns a YES vote it has not made durable.
type Participant interface {
	Prepare(ctx context.Context, txid string, w participant.Write) (participant.Vote, error)
	Commit(ctx context.Context, txid string) error
	Abort(ctx context.Context, txid string) error
	Read(ctx context.Context, key string) (participant.ReadResult, error)
	PreparedTxs(ctx context.Context) ([]participant.PreparedTx, error)
}

var (
	_ Participant = (*participant.Store)(nil)
	_ Participant = (*participant.Client)(nil)
)

// DecisionLog records decisions, in the order they are queued. Append
// returns once the record is durable; Queue queues it and returns a wait
// for its durability; QueueLazy is Queue for a record whose fsync may wait
// a moment to share another's, and Flush ends that wait; AppendAsync
// records something whose loss is harmless.
type DecisionLog interface {
	Append(protocol.Record) error
	Queue(protocol.Record) (wait func() error)
	QueueLazy(protocol.Record) (wait func() error)
	Flush()
	AppendAsync(protocol.Record) error
}

var _ DecisionLog = (*txlog.Log)(nil)

// Member is one participant as configured.
type Member struct {
	Name string // as written in COMMIT records; no spaces or commas
	URL  string // for status only
	Participant
}

// Config is what a coordinator needs; zero durations get defaults.
type Config struct {
	Members []Member
	Log     DecisionLog
	// Epoch is this incarnation's number, already logged.
	Epoch uint64
	// Pending are the STAGED and COMMIT records the log holds without an
	// outcome (txlog.State.Pending).
	Pending []protocol.Record

	// PrepareTimeout bounds the prepare phase (default 2s).
	PrepareTimeout time.Duration
	// LockTimeout bounds the wait for a key another write holds (default 2s).
	LockTimeout time.Duration
	// CallTimeout bounds one commit/abort/read call (default 2s).
	CallTimeout time.Duration
	// RetryInterval is the first delay before re-sending a decision; it
	// doubles up to 5s (default 100ms).
	RetryInterval time.Duration
	// Overloaded is the number of calls in flight to one participant above
	// which status reports it overloaded (default 256).
	Overloaded int
	// ReadCacheBytes bounds the cache of committed values that serves gets
	// without a participant (see valueCache); 0 turns it off.
	ReadCacheBytes int64
	// Fatal is called when the decision log fails: the outcome of the
	// transaction being logged is then unknown and the process must
	// restart and recover. Default: log and exit(2).
	Fatal func(error)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Observer hears how long phases take (metrics); nil: nobody.
	Observer Observer

	// failpoint, set only by tests, is called at named points of the
	// protocol; returning true simulates a crash there: from then on the
	// coordinator sends and logs nothing (see crash_test.go).
	failpoint func(name string) bool
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.PrepareTimeout, 2*time.Second)
	def(&c.LockTimeout, 2*time.Second)
	def(&c.CallTimeout, 2*time.Second)
	def(&c.RetryInterval, 100*time.Millisecond)
	if c.Overloaded <= 0 {
		c.Overloaded = 256
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Observer == nil {
		c.Observer = noObserver{}
	}
	if c.Fatal == nil {
		log := c.Logger
		c.Fatal = func(err error) {
			log.Error("coordinator: decision log failed; exiting so that recovery can run", "err", err)
			os.Exit(2)
		}
	}
}

// Coordinator runs transactions. Create it with New, stop it with Close.
type Coordinator struct {
	cfg     Config
	log     *slog.Logger
	members []*member
	names   []string
	locks   *keyLocks
	cache   *valueCache // nil when off
	cstats  cacheStats
	txs     sync.Map // txid -> *txn, until every participant has the outcome
	seq     atomic.Uint64
	rr      atomic.Uint64 // round-robin start for reads

	committed, aborted atomic.Uint64
	active, inDoubt    atomic.Int64

	ctx    context.Context // cancelled by Close: ends background work
	cancel context.CancelFunc
	wg     sync.WaitGroup

	dead atomic.Bool // set by a simulated crash
}

// member wraps a Participant with what status needs to know.
type member struct {
	Member
	inflight atomic.Int64
}

// errCrashed is what a simulated crash returns to the caller.
var errCrashed = errors.New("coordinator: crashed (test failpoint)")

// New starts a coordinator. It starts re-sending the commits in
// cfg.Pending and clearing participants' prepared transactions of earlier
// epochs in the background, and is ready to serve at once: reads and
// writes handle keys that are still in doubt.
func New(cfg Config) (*Coordinator, error) {
	cfg.defaults()
	if len(cfg.Members) == 0 {
		return nil, errors.New("coordinator: no participants configured")
	}
	if cfg.Log == nil {
		return nil, errors.New("coordinator: no decision log")
	}
	if cfg.Epoch == 0 {
		return nil, errors.New("coordinator: epoch must be positive (log it first)")
	}
	c := &Coordinator{cfg: cfg, log: cfg.Logger, locks: newKeyLocks(), cache: newValueCache(cfg.ReadCacheBytes)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	seen := map[string]bool{}
	for _, m := range cfg.Members {
		if m.Name == "" || seen[m.Name] {
			return nil, fmt.Errorf("coordinator: participant name %q empty or repeated", m.Name)
		}
		seen[m.Name] = true
		c.members = append(c.members, &member{Member: m})
		c.names = append(c.names, m.Name)
	}
	c.recover()
	return c, nil
}

// Close stops background work (re-sends continue after a restart, from
// the log) and waits for it to end.
func (c *Coordinator) Close() {
	c.cancel()
	c.wg.Wait()
}

func (c *Coordinator) goBackground(f func()) {
	c.wg.Add(1)
	go func() { defer c.wg.Done(); f() }()
}

// crashAt reports whether a test asked the coordinator to die at point.
func (c *Coordinator) crashAt(point string) bool {
	if c.dead.Load() {
		return true
	}
	if c.cfg.failpoint != nil && c.cfg.failpoint(point) {
		c.dead.Store(true)
		return true
	}
	return false
}

func (c *Coordinator) lookup(txid string) *txn {
	if v, ok := c.txs.Load(txid); ok {
		return v.(*txn)
	}
	return nil
}

// Outcome tells a participant whether txid committed. It implements
// participant.Resolver. A transaction this coordinator does not know was
// never committed (presumed abort: recovery registers every one whose
// outcome is open); one still being prepared is aborted now, durably, so
// the answer holds; otherwise the answer waits until the outcome is on
// disk.
func (c *Coordinator) Outcome(ctx context.Context, txid string) (bool, error) {
	t := c.lookup(txid)
	if t == nil {
		return false, nil
	}
	if t.decideFrom(statePreparing, stateAborted) {
		if err := c.logAbort(t); err != nil {
			return false, err
		}
		return false, nil
	}
	return t.wait(ctx)
}

var _ participant.Resolver = (*Coordinator)(nil)
