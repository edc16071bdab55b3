package drill

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/twopc/twopc/api"
	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/participant"
	"github.com/twopc/twopc/txlog"
)

// peers makes the drill's own calls to a cluster, through the HTTP
// clients its Config names (which may present tokens or trust a CA).
type peers struct {
	cl      Cluster
	coordHC *http.Client // nil: a plain client
	partHC  *http.Client
}

// call calls the coordinator, bounded by a few seconds: a settled cluster
// answers at once, so a slow answer is itself a reason to keep waiting.
func (p peers) call(ctx context.Context, method string, args ...any) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return rpc.NewClient(p.cl.CoordinatorURL(), p.coordHC).Call(ctx, method, args...)
}

// settle waits until the cluster has finished what the faults left:
// every process running, nothing in doubt or being prepared at the
// coordinator, nothing prepared at any participant, no commit without its
// end in the txlog. "Never stuck" is a promise with no deadline, so the
// drill needs one: past timeout, what is still unfinished is a violation.
func settle(ctx context.Context, p peers, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if err := p.cl.Healthy(ctx); err != nil {
			// A process that died on its own will not come back by waiting.
			return fmt.Errorf("cluster not healthy: %w", err)
		}
		err := unsettled(ctx, p)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not settled %v after the load stopped: %w", timeout, err)
		case <-time.After(100 * time.Millisecond): // poll interval
		}
	}
}

// unsettled returns why the cluster has not settled yet, or nil.
func unsettled(ctx context.Context, p peers) error {
	res, err := p.call(ctx, "status")
	if err != nil {
		return fmt.Errorf("coordinator status: %w", err)
	}
	st, err := api.DecodeStatus(res)
	if err != nil {
		return err
	}
	if st.InDoubt != 0 || st.Active != 0 {
		return fmt.Errorf("coordinator: in_doubt=%d active=%d", st.InDoubt, st.Active)
	}
	for i, u := range p.cl.ParticipantURLs() {
		pts, err := participant.NewClient(u, p.partHC).PreparedTxs(ctx)
		if err != nil {
			return fmt.Errorf("p%d prepared: %w", i+1, err)
		}
		if len(pts) > 0 {
			return fmt.Errorf("p%d holds %d transactions prepared, e.g. %s on key %q", i+1, len(pts), pts[0].TxID, pts[0].Key)
		}
	}
	log, err := p.cl.ReadTxlog(ctx)
	if errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the txlog: %w", err)
	}
	st2, err := scanTxlog(log)
	if err != nil {
		return err
	}
	if len(st2.Pending) > 0 {
		return fmt.Errorf("txlog: %d unfinished transactions (staged or committed, never ended), e.g. %s %s", len(st2.Pending), st2.Pending[0].Kind, st2.Pending[0].TxID)
	}
	return nil
}

// scanTxlog applies txlog's own reading rules to a copy of the log.
func scanTxlog(data []byte) (*txlog.State, error) {
	dir, err := os.MkdirTemp("", "twopc-drill-txlog")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "coordinator.txlog")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, err
	}
	return txlog.Scan(path)
}
