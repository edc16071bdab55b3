package participant

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twopc/twopc/protocol"
)

// Resolver tells a participant the outcome of a transaction it holds
// prepared. The coordinator implements it; it answers abort for any
// transaction it never decided to commit (presumed abort), and from then
// on never commits that transaction. Resolve does not bound a question:
// a Resolver over the network must (Coordinators does).
type Resolver interface {
	Outcome(ctx context.Context, txid string) (commit bool, err error)
}

// outcomeTimeout bounds one question to one coordinator.
const outcomeTimeout = 5 * time.Second

// Coordinators is a Resolver that asks several coordinators in turn until
// one answers: with several, any of them may be the one that knows, or
// the only one up. It starts from the last one that answered, so that
// the usual question costs one call, and bounds each try, so that one
// silent coordinator does not hold up the others until TCP gives up.
type Coordinators struct {
	list []Resolver
	last atomic.Int64 // index in list of the last one that answered
}

// NewCoordinators returns a Resolver over list, which must not be empty.
func NewCoordinators(list ...Resolver) *Coordinators {
	return &Coordinators{list: list}
}

// Outcome asks each coordinator in turn, from the last that answered,
// and returns the first answer, or every error.
func (c *Coordinators) Outcome(ctx context.Context, txid string) (bool, error) {
	start := int(c.last.Load())
	var errs []error
	for i := range c.list {
		k := (start + i) % len(c.list)
		octx, cancel := context.WithTimeout(ctx, outcomeTimeout)
		commit, err := c.list[k].Outcome(octx, txid)
		cancel()
		if err == nil {
			c.last.Store(int64(k))
			return commit, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return false, errors.Join(errs...)
}

// Resolve asks r for the outcome of every transaction prepared here for at
// least olderThan (and of every one reloaded at start), then applies it.
// It returns how many it resolved; transactions r could not answer for
// stay prepared and locked for the next round.
func (s *Store) Resolve(ctx context.Context, r Resolver, olderThan time.Duration) (int, error) {
	var due []string
	cutoff := s.now().Add(-olderThan)
	s.mu.Lock()
	for id, p := range s.prepared {
		if p.since.IsZero() || !p.since.After(cutoff) {
			due = append(due, id)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(due, protocol.CompareTxIDs) // oldest first, and the same order every round
	var errs []error
	n := 0
	for _, id := range due {
		commit, err := r.Outcome(ctx, id)
		if err == nil {
			if commit {
				err = s.Commit(ctx, id)
			} else {
				err = s.Abort(ctx, id)
			}
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// RunResolver calls Resolve every interval until ctx ends, so that prepared
// transactions whose decision never arrived are settled without an
// operator. Errors are logged and retried on the next round.
func (s *Store) RunResolver(ctx context.Context, r Resolver, interval, olderThan time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.Resolve(ctx, r, olderThan); err != nil && ctx.Err() == nil {
			s.log.Warn("participant: could not resolve prepared transactions yet", "resolved", n, "err", err)
		} else if n > 0 {
			s.log.Info("participant: resolved prepared transactions", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
