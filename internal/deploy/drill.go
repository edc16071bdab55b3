package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twopc/twopc/api"
	"github.com/twopc/twopc/drill"
	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/participant"
)

// DrillConfig says how hard the recovery drill pushes.
type DrillConfig struct {
	Kills   int    // coordinator SIGKILLs, default 3
	Clients int    // concurrent writers, default 4
	Seed    uint64 // for the kill moments; 0: random
	// The coordinator is killed after a random number of acknowledged
	// writes since it last started, in [MinAcks, MaxAcks] (default 20,
	// 200): a moment chosen by the load itself, not by a clock.
	MinAcks, MaxAcks int
	// Settle bounds the wait for the cluster to resolve every transaction
	// after the last restart (default 60s).
	Settle time.Duration
	// Coordinator carries the calls to the coordinator: with the client
	// token and the cluster's CA (Cluster.CoordinatorHTTP); nil: a plain
	// client.
	Coordinator *http.Client
	Out         io.Writer
}

func (c *DrillConfig) defaults() {
	if c.Kills <= 0 {
		c.Kills = 3
	}
	if c.Clients <= 0 {
		c.Clients = 4
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	if c.MinAcks <= 0 {
		c.MinAcks = 20
	}
	if c.MaxAcks < c.MinAcks {
		c.MaxAcks = max(200, c.MinAcks)
	}
	if c.Settle <= 0 {
		c.Settle = 60 * time.Second
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
}

// DrillReport is what a drill found.
type DrillReport struct {
	Kills, Acked, Unknown, Failed int
	Missing                       []string // acknowledged keys a get did not return as written
	Digests                       []participant.Digest
	InDoubt                       int64
}

// ErrDrill marks a drill that found a broken promise.
var ErrDrill = errors.New("drill: violation")

// RunDrill puts load on cl through its coordinator, SIGKILLs the
// coordinator cfg.Kills times at moments the load picks, restarts it each
// time, then checks: every acknowledged write reads back, every
// participant has the same digest and nothing prepared, and the
// coordinator has nothing in doubt. Any violation is an ErrDrill.
func RunDrill(ctx context.Context, cl drill.Cluster, cfg DrillConfig) (DrillReport, error) {
	cfg.defaults()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7770))
	fmt.Fprintf(cfg.Out, "drill: %d kills, %d clients, seed %d, coordinator %s\n", cfg.Kills, cfg.Clients, cfg.Seed, cl.CoordinatorURL())
	if err := cl.Healthy(ctx); err != nil {
		return DrillReport{}, fmt.Errorf("drill: cluster not healthy before the drill: %w", err)
	}
	ld := newLoad(cl.CoordinatorURL(), cfg.Coordinator, fmt.Sprintf("drill-%x", cfg.Seed))
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range cfg.Clients {
		wg.Go(func() { ld.run(loadCtx, w) })
	}
	var rep DrillReport
	var err error
	for k := 1; k <= cfg.Kills && err == nil; k++ {
		want := cfg.MinAcks + rng.IntN(cfg.MaxAcks-cfg.MinAcks+1)
		if err = ld.waitAcks(ctx, want); err != nil {
			break
		}
		if err = cl.Kill(ctx, drill.Coordinator, 0); err != nil {
			break
		}
		rep.Kills++
		fmt.Fprintf(cfg.Out, "drill: kill %d/%d after %d acknowledged writes (%d so far)\n", k, cfg.Kills, want, ld.acked.Load())
		if err = cl.Restart(ctx, drill.Coordinator, 0); err != nil {
			break
		}
	}
	if err == nil { // the restarted coordinator must take writes again
		err = ld.waitAcks(ctx, cfg.MinAcks)
	}
	stopLoad()
	wg.Wait()
	if err != nil {
		return rep, fmt.Errorf("drill: %w", err)
	}
	rep.Acked, rep.Unknown, rep.Failed = len(ld.written), ld.unknown, ld.failed
	if err := settle(ctx, cl, ld.c, cfg.Settle, &rep); err != nil {
		return rep, err
	}
	rep.Missing = ld.verify(ctx)
	fmt.Fprintf(cfg.Out, "drill: %d kills; writes: %d acknowledged, %d outcome unknown, %d refused; missing after recovery: %d; in doubt: %d\n",
		rep.Kills, rep.Acked, rep.Unknown, rep.Failed, len(rep.Missing), rep.InDoubt)
	for i, d := range rep.Digests {
		fmt.Fprintf(cfg.Out, "drill: participant %d digest keys=%d hash=%s prepared=%d\n", i, d.Keys, d.Hash, d.Prepared)
	}
	if len(rep.Missing) > 0 {
		return rep, fmt.Errorf("%w: %d acknowledged write(s) lost or wrong, e.g. %q", ErrDrill, len(rep.Missing), rep.Missing[0])
	}
	if err := cl.Healthy(ctx); err != nil {
		return rep, fmt.Errorf("%w: after the drill: %v", ErrDrill, err)
	}
	fmt.Fprintln(cfg.Out, "drill: PASS")
	return rep, nil
}

// settle waits, up to limit, for the cluster to finish every transaction:
// nothing in doubt at the coordinator, nothing prepared at a participant,
// identical digests. If that never happens it is a violation ("never
// stuck"), reported with the last state seen.
func settle(ctx context.Context, cl drill.Cluster, coord *rpc.Client, limit time.Duration, rep *DrillReport) error {
	var parts []*participant.Client
	for _, u := range cl.ParticipantURLs() {
		parts = append(parts, participant.NewClient(u, nil))
	}
	deadline := time.Now().Add(limit)
	for {
		last, done := settledOnce(ctx, coord, parts, rep)
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: not settled %v after the last restart: %s", ErrDrill, limit, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond): // poll interval of a bounded wait
		}
	}
}

func settledOnce(ctx context.Context, coord *rpc.Client, parts []*participant.Client, rep *DrillReport) (string, bool) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := coord.Call(cctx, "status")
	if err != nil {
		return "coordinator status: " + err.Error(), false
	}
	st, err := api.DecodeStatus(res)
	if err != nil {
		return err.Error(), false
	}
	rep.InDoubt = st.InDoubt
	if rep.InDoubt != 0 {
		return fmt.Sprintf("coordinator has %d transaction(s) in doubt", rep.InDoubt), false
	}
	rep.Digests = rep.Digests[:0]
	for i, p := range parts {
		d, err := p.Digest(cctx)
		if err != nil {
			return fmt.Sprintf("participant %d digest: %v", i, err), false
		}
		rep.Digests = append(rep.Digests, d)
		if d.Prepared != 0 {
			return fmt.Sprintf("participant %d has %d prepared transaction(s)", i, d.Prepared), false
		}
		if d.Keys != rep.Digests[0].Keys || d.Hash != rep.Digests[0].Hash {
			return fmt.Sprintf("participant digests differ: %+v", rep.Digests), false
		}
	}
	return "", true
}

// load writes fresh keys through the coordinator and remembers which
// writes were acknowledged.
type load struct {
	c               *rpc.Client
	url, prefix     string
	acked           atomic.Int64
	notify          chan struct{} // a write was acknowledged
	mu              sync.Mutex
	written         map[string]string
	unknown, failed int
}

func newLoad(url string, hc *http.Client, prefix string) *load {
	return &load{c: rpc.NewClient(url, hc), url: url, prefix: prefix,
		notify: make(chan struct{}, 1), written: map[string]string{}}
}

func (l *load) run(ctx context.Context, w int) {
	for n := 0; ctx.Err() == nil; n++ {
		k, v := fmt.Sprintf("%s/%d/%d", l.prefix, w, n), fmt.Sprintf("v%d-%d", w, n)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := l.c.Call(cctx, "put", k, v)
		cancel()
		l.mu.Lock()
		var f *rpc.Fault
		switch {
		case err == nil:
			l.written[k] = v
		case ctx.Err() != nil:
			// Cut off by the end of the drill: outcome unknown, not a finding.
			l.unknown++
		case errors.As(err, &f), errors.Is(err, syscall.ECONNREFUSED):
			l.failed++ // a fault or a refused connection: no effect, by contract
		default:
			l.unknown++ // the coordinator died mid-call: either way is fine
		}
		l.mu.Unlock()
		if err == nil {
			l.acked.Add(1)
			select {
			case l.notify <- struct{}{}:
			default:
			}
			continue
		}
		// The coordinator is down or refusing: back off briefly rather
		// than spin on connection refused while it restarts.
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitAcks returns once n more writes have been acknowledged, or fails
// after a bounded wait (the cluster takes no writes).
func (l *load) waitAcks(ctx context.Context, n int) error {
	target := l.acked.Load() + int64(n)
	timeout := time.NewTimer(60 * time.Second)
	defer timeout.Stop()
	for l.acked.Load() < target {
		select {
		case <-l.notify:
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout.C:
			return fmt.Errorf("no progress: %d of %d writes acknowledged in 60s", l.acked.Load()-target+int64(n), n)
		}
	}
	return nil
}

// verify reads every acknowledged key back through the coordinator and
// returns those that are missing or wrong.
func (l *load) verify(ctx context.Context) []string {
	keys := make(chan string)
	var mu sync.Mutex
	var missing []string
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for k := range keys {
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				got, err := l.c.Call(cctx, "get", k)
				cancel()
				if err != nil || got != l.written[k] {
					mu.Lock()
					missing = append(missing, fmt.Sprintf("%s: want %q, got %v (err %v)", k, l.written[k], got, err))
					mu.Unlock()
				}
			}
		})
	}
	for k := range l.written {
		keys <- k
	}
	close(keys)
	wg.Wait()
	return missing
}
