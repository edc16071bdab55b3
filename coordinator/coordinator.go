package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twopc/twopc/protocol"
)

// Participant is the coordinator's view of one replica. Calls may run
// concurrently. An error means the call's effect is unknown, except that
// Prepare never returns a YES vote it has not made durable.
// participant.Store and peer.Client implement it.
type Participant interface {
	Prepare(ctx context.Context, txid string, t *protocol.Txn) (protocol.Vote, error)
	Commit(ctx context.Context, txid string) error
	Abort(ctx context.Context, txid string) error
	Read(ctx context.Context, keys ...string) ([]protocol.KeyState, error)
	PreparedTxs(ctx context.Context) ([]protocol.PreparedTx, error)
	// Scan and Install catch a participant up (catchup.go).
	Scan(ctx context.Context, after string, limit int) ([]protocol.KeyState, bool, error)
	Install(ctx context.Context, in *protocol.Install) error
}

// DecisionLog records decisions, in the order they are queued. Append
// returns once the record is durable; Queue queues it and returns a wait
// for its durability; QueueLazy is Queue for a record whose fsync may wait
// a moment to share another's, and Flush ends that wait; AppendAsync
// records something whose loss is harmless. txlog.Log implements it.
type DecisionLog interface {
	Append(protocol.Record) error
	Queue(protocol.Record) (wait func() error)
	QueueLazy(protocol.Record) (wait func() error)
	Flush()
	AppendAsync(protocol.Record) error
}

// Joined is a participant added by an operator, as the log has it.
type Joined struct{ Name, URL string }

// Member is one participant as configured.
type Member struct {
	Name string // as written in log records; no spaces or commas
	URL  string // for status only
	Participant
}

// Config is what a coordinator needs; zero durations get defaults.
type Config struct {
	// Name is set when this coordinator is one of several: it leads them
	// (package replicated), and status says so.
	Name    string
	Members []Member
	Log     DecisionLog
	// Epoch is this incarnation's number, already logged.
	Epoch uint64
	// Pending are the STAGED and COMMIT records the log holds without an
	// outcome (txlog.State.Pending), in log order.
	Pending []protocol.Record
	// Excluded are the participants the log says left the write set
	// (txlog.State.Excluded): recovery does not wait for them.
	Excluded []string
	// Joined are the participants the log says an operator added
	// (txlog.State.Joined): members too, reached with Dial. Removed are
	// those it says were taken out for good (txlog.State.Removed): a
	// configured one is left out (the log is the later word), and nobody
	// waits for them.
	Joined  []Joined
	Removed []string
	// Dial returns a client of the participant served at url, for one an
	// operator adds (AddMember); nil: participants cannot be added.
	Dial func(url string) (Participant, error)

	// PrepareTimeout bounds the prepare phase (default 2s).
	PrepareTimeout time.Duration
	// LockTimeout bounds the wait for keys another transaction holds
	// (default 2s).
	LockTimeout time.Duration
	// CallTimeout bounds one commit, abort or read call (default 2s).
	CallTimeout time.Duration
	// RetryInterval is the first delay before a failed call is made again;
	// it doubles up to 5s (default 100ms).
	RetryInterval time.Duration
	// SweepEvery is how often the coordinator asks every participant
	// which transactions it holds prepared, and aborts those it does not
	// know (default 10s; see sweep).
	SweepEvery time.Duration
	// ExcludeAfter is how long a participant may go without answering
	// (while a call to it is out or has failed) before it is excluded
	// from the write set; 0 never excludes (see membership.go).
	ExcludeAfter time.Duration
	// MinParticipants is the fewest participants the write set keeps:
	// none is excluded below it (default: a majority of the members,
	// counted again as they are added and removed).
	MinParticipants int
	// Overloaded is the number of calls in flight to one participant above
	// which status reports it overloaded (default 256).
	Overloaded int
	// MaxResultBytes bounds the bytes of values one transaction's gets may
	// return (0: no bound). Participants have the same limit
	// (participant.Options.MaxResultBytes) and vote NO past it.
	MaxResultBytes int
	// ReadCacheBytes bounds the cache of committed values that serves gets
	// without a participant (see valueCache); 0 turns it off.
	ReadCacheBytes int64
	// Fatal is called when the decision log fails: the outcome of the
	// transaction being logged is then unknown and the process must
	// restart and recover. Default: log and exit(2).
	Fatal func(error)
	// Deposed is called, at most once, when a participant refuses a call
	// because it has seen term seen, above this coordinator's (Epoch):
	// another coordinator leads, or this one's log was lost. The refused
	// call counts as failed. Default: log an error (deposed.go).
	Deposed func(seen uint64)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Observer hears how long phases take (metrics); nil: nobody.
	Observer Observer

	// Set only by tests: manualRejoin leaves catch-ups to the test;
	// catchUpPage overrides the page size of a catch-up's copy.
	manualRejoin bool
	catchUpPage  int
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
	def(&c.SweepEvery, 10*time.Second)
	if c.catchUpPage <= 0 {
		c.catchUpPage = catchUpPage
	}
	if c.Overloaded <= 0 {
		c.Overloaded = 256
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Observer == nil {
		c.Observer = noObserver{}
	}
	if c.Deposed == nil {
		log, ours := c.Logger, c.Epoch
		c.Deposed = func(seen uint64) { logDeposed(log, seen, ours) }
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
	cfg Config
	log *slog.Logger
	// roster is every participant; replaced whole when one is added or
	// removed (members.go).
	roster atomic.Pointer[roster]
	// writeSet is who a transaction starting now goes to, and reads use:
	// the participants not excluded. Replaced whole on every change.
	writeSet atomic.Pointer[writeSet]
	// membership counts write set changes, so that a transaction that
	// read the write set as one changed can tell (start).
	membership atomic.Uint64
	// membersMu makes membership changes (exclude, include, add,
	// remove) one at a time.
	membersMu sync.Mutex
	// startGate is held shared by every write as it starts (takes its id
	// and write set), and exclusively by a catch-up as it includes a
	// participant; holding counts the transactions holding keys, which
	// the catch-up waits to reach zero (drain). See catchup.go.
	startGate sync.RWMutex
	holding   atomic.Int64
	drainMu   sync.Mutex
	drained   chan struct{}             // closed when holding reaches zero, if set
	dirty     atomic.Pointer[dirtyKeys] // set while a catch-up runs
	rejoining atomic.Bool               // a catch-up runs
	locks     *keyLocks
	cache     *valueCache // nil when off
	cstats    cacheStats
	txs       sync.Map // txid -> *tx, until the machine is finished (kept if it failed)
	seq       atomic.Uint64
	sweeps    atomic.Uint64 // periodic sweep rounds done (recovery.go)
	rr        atomic.Uint64 // round-robin start for reads
	deposed   sync.Once     // Config.Deposed is called once
	counts    counters

	ctx     context.Context // cancelled by Close: ends background work
	cancel  context.CancelFunc
	wg      sync.WaitGroup // every goroutine the coordinator starts
	stopMu  sync.RWMutex
	stopped bool // set by Close: start no more goroutines
}

// member wraps a Participant with what status needs to know.
type member struct {
	Member
	inflight atomic.Int64
	// excluded: it left the write set (its exclude record is durable).
	excluded atomic.Bool
	// lastOK and failedAt are when a call to it last succeeded and last
	// failed (unix nanoseconds), for exclusion.
	lastOK, failedAt atomic.Int64
	probing          atomic.Bool // a liveness probe is out
	removed          atomic.Bool // taken out for good (RemoveMember)
	// catchingUp: excluded, and a catch-up is copying to it; after
	// rejoinFails failed catch-ups, the next waits until nextRejoin.
	catchingUp  atomic.Bool
	rejoinFails atomic.Int64
	nextRejoin  atomic.Int64
}

// New starts a coordinator. It starts finishing the transactions in
// cfg.Pending and clearing participants' prepared transactions of earlier
// epochs in the background, and is ready to serve at once: reads and
// writes of keys still in doubt wait for them.
func New(cfg Config) (*Coordinator, error) {
	cfg.defaults()
	if cfg.Log == nil {
		return nil, errors.New("coordinator: no decision log")
	}
	if cfg.Epoch == 0 {
		return nil, errors.New("coordinator: epoch must be positive (log it first)")
	}
	c := &Coordinator{cfg: cfg, log: cfg.Logger, locks: newKeyLocks(), cache: newValueCache(cfg.ReadCacheBytes)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	r, err := c.restoreRoster()
	if err != nil {
		return nil, err
	}
	c.roster.Store(r)
	if len(r.members) == 0 {
		return nil, errors.New("coordinator: no participants configured")
	}
	if len(r.members) > protocol.MaxParticipants {
		return nil, fmt.Errorf("coordinator: %d participants, at most %d", len(r.members), protocol.MaxParticipants)
	}
	if cfg.MinParticipants > len(r.members) {
		return nil, fmt.Errorf("coordinator: --min-participants %d, but only %d participants are configured", cfg.MinParticipants, len(r.members))
	}
	c.setWriteSet()
	if len(c.writeSet.Load().names) == 0 {
		return nil, errors.New("coordinator: the log says every configured participant is excluded")
	}
	c.recover()
	c.goBackground(c.watchMembers)
	return c, nil
}

// Close stops background work (re-sends continue after a restart, from
// the log) and waits for it to end. Transactions still running are left
// as a crash would leave them: recovery finishes them.
func (c *Coordinator) Close() {
	c.stopMu.Lock()
	c.stopped = true
	c.stopMu.Unlock()
	c.cancel()
	c.wg.Wait()
}

// goBackground runs f in a goroutine Close waits for; after Close it
// does nothing.
func (c *Coordinator) goBackground(f func()) {
	c.stopMu.RLock()
	defer c.stopMu.RUnlock()
	if c.stopped {
		return
	}
	c.wg.Add(1)
	go func() { defer c.wg.Done(); f() }()
}

func (c *Coordinator) lookup(txid string) *tx {
	if v, ok := c.txs.Load(txid); ok {
		return v.(*tx)
	}
	return nil
}

// Outcome tells a participant whether txid committed. It implements
// participant.Resolver. A transaction this coordinator does not know was
// never committed (presumed abort: recovery registers every one whose
// outcome is open, and a committed one is forgotten only once every
// participant applied it); one still being prepared is aborted now; the
// answer waits until the outcome is durable. A transaction of a later
// term than this coordinator's was started by another one, which alone
// knows: presuming abort could contradict its commit, so the answer is
// an error, and the participant asks another coordinator.
func (c *Coordinator) Outcome(ctx context.Context, txid string) (bool, error) {
	if protocol.EpochOf(txid) > c.cfg.Epoch {
		return false, fmt.Errorf("coordinator: %s is of a term after ours (%d): ask the coordinator that started it", txid, c.cfg.Epoch)
	}
	t := c.lookup(txid)
	if t == nil {
		return false, nil
	}
	return t.ask(ctx)
}
