package coordinator

import (
	"context"
	"errors"
	"fmt"

	"github.com/twopc/twopc/participant"
)

// Get returns key's value as of some instant during the call
// (linearizable): from the cache of committed values if it is there, else
// from one participant, round-robin, trying the next if one fails.
func (c *Coordinator) Get(ctx context.Context, key string) (participant.Value, error) {
	if c.ctx.Err() != nil {
		return participant.Value{}, ErrStopped
	}
	if e, ok := c.cache.get(key); ok {
		c.cstats.hits.Add(1)
		if !e.found {
			return participant.Value{}, ErrNotFound
		}
		return e.value, nil
	}
	c.cstats.misses.Add(1)
	n := len(c.members)
	start := int(c.rr.Add(1) % uint64(n))
	var errs []error
	for i := range n {
		m := c.members[(start+i)%n]
		v, found, err := c.readFrom(ctx, m, key)
		if err == nil {
			if !found {
				return participant.Value{}, ErrNotFound
			}
			return v, nil
		}
		if errors.Is(err, ErrConflict) || errors.Is(err, errInDoubt) || ctx.Err() != nil {
			return participant.Value{}, err
		}
		errs = append(errs, fmt.Errorf("%s: %w", m.Name, err))
	}
	return participant.Value{}, fmt.Errorf("%w: no participant could be read: %w", ErrUnavailable, errors.Join(errs...))
}

// errInDoubt: the key's pending transaction is being resolved by recovery;
// every participant would make the read wait for the same answer.
var errInDoubt = errors.New("recovery has not resolved it yet")

// readFrom reads key at m and decides which value is current.
//
// A participant returns its committed value and, if the key is prepared,
// the pending write. The pending write is current once its transaction is
// committed (committing or committed): a client may have been told so.
// Before that (preparing) no client has, so the committed value is still
// a correct answer. A transaction recovery is still resolving may be
// either: the read waits for the answer.
//
// A pending transaction the coordinator does not know is either aborted
// or committed and already forgotten, which happens only after every
// participant applied it. So read again: if the same transaction is still
// pending there, it cannot have been committed (it would be gone), and the
// committed value is current.
func (c *Coordinator) readFrom(ctx context.Context, m *member, key string) (participant.Value, bool, error) {
	unknown := ""
	for range 8 {
		res, err := c.readOnce(ctx, m, key)
		if err != nil {
			return participant.Value{}, false, err
		}
		if res.Pending == "" {
			return res.Value, res.Found, nil
		}
		if t := c.lookup(res.Pending); t != nil {
			switch t.current() {
			case stateCommitting, stateCommitted:
				return res.Write.Value, res.Write.Op == participant.OpPut, nil
			case stateResolving:
				wctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
				_, err := t.wait(wctx)
				cancel()
				if err != nil {
					return participant.Value{}, false, fmt.Errorf("%w: key %q is in doubt until recovery resolves %s: %w", ErrUnavailable, key, t.id, errInDoubt)
				}
				continue // read again: the participant may have the outcome by now
			}
			return res.Value, res.Found, nil
		}
		if res.Pending == unknown {
			return res.Value, res.Found, nil
		}
		unknown = res.Pending
	}
	return participant.Value{}, false, fmt.Errorf("%w: key keeps changing under the read", ErrConflict)
}

func (c *Coordinator) readOnce(ctx context.Context, m *member, key string) (participant.ReadResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	m.inflight.Add(1)
	defer m.inflight.Add(-1)
	return m.Read(ctx, key)
}
