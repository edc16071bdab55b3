package coordinator

import (
	"context"
	"errors"
	"fmt"

	"github.com/twopc/twopc/protocol"
)

// leaderConfirmer is a decision log shared by several coordinators
// (consensus.Log): only the one that leads may write to it, and a read
// must first hear from a majority that this one still does. Otherwise a
// leader cut off from the others, not yet stepped down, could answer
// from a participant the next leader excluded without reaching it, or
// from its value cache: stale.
type leaderConfirmer interface {
	ConfirmLeader(ctx context.Context) error
}

// confirmLeader returns nil if this coordinator may answer a read now:
// it is the only one (its log is its own), or the group confirmed it
// still leads. Bounded by CallTimeout.
func (c *Coordinator) confirmLeader(ctx context.Context) error {
	lc, ok := c.cfg.Log.(leaderConfirmer)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	if err := lc.ConfirmLeader(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrNotLeading, err)
	}
	return nil
}

// readTxn runs a transaction that writes nothing: its keys' current
// entries from one participant, evaluated here. With more than one key,
// the keys are locked for the read, so that no write lands between two
// of them; one key needs no lock (a single read is atomic). It logs
// nothing and asks no participant to vote.
func (c *Coordinator) readTxn(ctx context.Context, t *protocol.Txn) (Result, error) {
	if err := c.confirmLeader(ctx); err != nil {
		return Result{}, err
	}
	keys := t.Keys()
	if len(keys) > 1 {
		unlock, ok := c.locks.lockAll(ctx, keys, c.cfg.LockTimeout, c.flush)
		if !ok {
			return Result{}, fmt.Errorf("%w: keys busy for longer than %v", ErrConflict, c.cfg.LockTimeout)
		}
		defer unlock()
	}
	entries, err := c.snapshot(ctx, keys)
	if err != nil {
		return Result{}, err
	}
	out := protocol.Evaluate(t, func(k string) protocol.Entry { return entries[k] }, c.cfg.MaxResultBytes)
	if out.TooLarge {
		return Result{}, fmt.Errorf("%w: the values it reads pass the limit of %d bytes", ErrTooLarge, c.cfg.MaxResultBytes)
	}
	return Result{Succeeded: out.Succeeded, Results: out.Results}, nil
}

// snapshot returns the current entry of each key, read from one
// participant (round-robin, the next if one fails).
func (c *Coordinator) snapshot(ctx context.Context, keys []string) (map[string]protocol.Entry, error) {
	ws := c.writeSet.Load().members // an excluded participant is behind
	n := len(ws)
	start := int(c.rr.Add(1) % uint64(n))
	var errs []error
	for i := range n {
		m := ws[(start+i)%n]
		entries, err := c.readFrom(ctx, m, keys)
		c.noticeDeposed(err)
		if err == nil && m.excluded.Load() {
			// Excluded while the read was out: writes may have committed
			// without it since (and been forgotten, which readFrom's test
			// of a pending transaction relies on not happening while a
			// replica still holds it), so its answer may be stale.
			err = errors.New("excluded during the read")
		}
		if err == nil {
			return entries, nil
		}
		if errors.Is(err, ErrConflict) || errors.Is(err, errInDoubt) || ctx.Err() != nil {
			return nil, err
		}
		errs = append(errs, fmt.Errorf("%s: %w", m.Name, err))
	}
	return nil, fmt.Errorf("%w: no participant could be read: %w", ErrUnavailable, errors.Join(errs...))
}

// readFrom reads keys at m and decides which entry of each is current.
//
// A participant returns each key's committed entry and, if the key is
// prepared, the pending transaction's next entry. The next entry is
// current once its transaction is committed (committing or committed): a
// client may have been told so. Before that (preparing, aborting) no
// client has, so the committed entry is still a correct answer. A
// transaction recovery is still resolving may be either: the read waits
// for its outcome.
//
// A pending transaction the coordinator does not know, or knows as
// finished, is either aborted or committed and (about to be) forgotten,
// which happens only after every participant applied it. So read again:
// if the same transaction is still pending there, it cannot have been
// committed (it would be gone), and the committed entry is current.
func (c *Coordinator) readFrom(ctx context.Context, m *member, keys []string) (map[string]protocol.Entry, error) {
	unknown, finished := map[string]bool{}, map[string]bool{}
	for range 8 {
		states, err := c.readOnce(ctx, m, keys)
		if err != nil {
			return nil, err
		}
		entries := make(map[string]protocol.Entry, len(keys))
		again := false
		seen := map[string]protocol.State{} // one look per transaction: all its keys agree
		for _, ks := range states {
			if ks.Pending == "" {
				entries[ks.Key] = ks.Entry
				continue
			}
			t := c.lookup(ks.Pending)
			if t == nil {
				if !unknown[ks.Pending] {
					unknown[ks.Pending], again = true, true
				}
				entries[ks.Key] = ks.Entry
				continue
			}
			st, ok := seen[t.id]
			if !ok {
				st = t.state()
				seen[t.id] = st
			}
			switch st {
			case protocol.Committing, protocol.Committed:
				entries[ks.Key] = ks.Next
			case protocol.Finished, protocol.Failed:
				// Finished (committed or aborted, it does not say) and
				// about to be forgotten: every participant of the write
				// set has applied or dropped it, so this snapshot is older
				// than that. Read again, as for one already forgotten.
				if !finished[t.id] {
					finished[t.id], again = true, true
				}
				entries[ks.Key] = ks.Entry
			case protocol.Resolving:
				wctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
				err := t.wait(wctx)
				cancel()
				if err != nil {
					return nil, fmt.Errorf("%w: key %.64q is in doubt until recovery resolves %s: %w", ErrUnavailable, ks.Key, t.id, errInDoubt)
				}
				again = true // the participant may have the outcome by now
			default:
				entries[ks.Key] = ks.Entry
			}
		}
		if !again {
			return entries, nil
		}
	}
	return nil, fmt.Errorf("%w: keys keep changing under the read", ErrConflict)
}

func (c *Coordinator) readOnce(ctx context.Context, m *member, keys []string) ([]protocol.KeyState, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	m.inflight.Add(1)
	defer m.inflight.Add(-1)
	states, err := m.Read(ctx, keys...)
	if err == nil && len(states) != len(keys) {
		err = fmt.Errorf("coordinator: read of %d keys got %d", len(keys), len(states))
	}
	return states, err
}
