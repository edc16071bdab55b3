package participant

import (
	"context"
	"errors"
	"time"
)

// Resolver tells a participant the outcome of a transaction it holds
// prepared. The coordinator implements it; it answers abort for any
// transaction it never decided to commit (presumed abort), and from then
// on never commits that transaction.
type Resolver interface {
	Outcome(ctx context.Context, txid string) (commit bool, err error)
}

// outcomeTimeout bounds one question to the coordinator.
const outcomeTimeout = 5 * time.Second

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
	var errs []error
	n := 0
	for _, id := range due {
		// Bounded, so that one unanswered question does not hold up the
		// others until TCP gives up.
		octx, cancel := context.WithTimeout(ctx, outcomeTimeout)
		commit, err := r.Outcome(octx, id)
		cancel()
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
