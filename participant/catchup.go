package participant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/twopc/twopc/protocol"
)

// A participant that was excluded, or a new one, catches up from another
// replica before it rejoins the write set. The coordinator drives it: it
// reads pages of the source's keys (Scan) and writes them here
// (Install), starting with a reset. See coordinator/catchup.go.

// Install applies one catch-up step through the writer goroutine, in one
// SQLite transaction (which also starts a new vote log: votelog.go):
// durable when it returns.
func (s *Store) Install(ctx context.Context, in *protocol.Install) error {
	return s.submitOne(ctx, &request{install: in, term: protocol.TermOf(ctx)})
}

// refuseInstall says why in must not be applied: a step of a catch-up
// other than the current one, delayed in the network (see
// protocol.Install.Fence). It runs on the writer goroutine with s.mu
// held, as install does.
func (s *Store) refuseInstall(in *protocol.Install) error {
	switch {
	case in.Fence == "":
		return errors.New("participant: an install without a fence")
	case in.Reset && s.fence != "" && protocol.CompareTxIDs(in.Fence, s.fence) <= 0:
		return fmt.Errorf("participant: a catch-up reset of fence %s, not after this participant's %s: a late step of an earlier catch-up", in.Fence, s.fence)
	case !in.Reset && in.Fence != s.fence:
		return fmt.Errorf("participant: a catch-up step of fence %s, not this participant's %s: a late step of another catch-up", in.Fence, s.fence)
	}
	return nil
}

// install runs on the writer goroutine with s.mu held. A reset drops the
// prepared transactions too: the copy that follows supersedes whatever
// they would have written, and their tombstones make a late commit or
// prepare of them a no-op. Committed writes not yet in kv go there
// first, so that the copy supersedes them, as it would if they were.
func (s *Store) install(tx *wtx, in *protocol.Install) error {
	s.rotateVotes = true // the log's commits must not replay onto the new kv
	if err := s.applyAllLocked(tx); err != nil {
		return err
	}
	if in.Reset {
		if err := tx.deleteAllKV(); err != nil {
			return err
		}
		if err := tx.exec(stSetMeta, "fence", in.Fence); err != nil {
			return err
		}
		if len(s.prepared) > 0 {
			s.log.Warn("participant: catching up: prepared transactions dropped; the copy supersedes them",
				"db", s.path, "prepared", len(s.prepared))
		}
		for id := range s.prepared {
			s.tombs.add(id)
		}
		clear(s.prepared)
		clear(s.locks)
		s.rebuild = true
		s.fence = in.Fence
	}
	for _, w := range in.Writes {
		if err := tx.applyWrite(w); err != nil {
			return err
		}
	}
	return nil
}

// ScanBytes bounds the bytes of committed values one Scan returns, so
// that a page of large values stays a bounded reply; a page holds at
// least one key.
const ScanBytes = 4 << 20

// Scan returns, in key order, the state of up to about limit keys after
// `after` ("": from the first), from one snapshot, and whether there may
// be more: every key with a committed entry and every key a prepared
// transaction would write (with its pending entry, as Read gives it).
// The values of a page add up to about ScanBytes at most.
func (s *Store) Scan(ctx context.Context, after string, limit int) (states []protocol.KeyState, more bool, err error) {
	if err := s.fenceRead(ctx); err != nil {
		return nil, false, err
	}
	if err := s.failedErr(); err != nil {
		return nil, false, err
	}
	if limit <= 0 {
		return nil, false, fmt.Errorf("participant: scan: limit %d, want a positive number", limit)
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, false, fmt.Errorf("participant: scan: %w", err)
	}
	defer tx.Rollback()
	over, pending, err := s.pin(ctx, tx, after)
	if err != nil {
		return nil, false, fmt.Errorf("participant: scan: %w", err)
	}
	states, more, err = scanKV(ctx, tx, after, limit)
	if err != nil {
		return nil, false, fmt.Errorf("participant: scan: %w", err)
	}
	last := ""
	if more {
		last = states[len(states)-1].Key
	}
	states = overlay(states, upTo(over, last))
	if len(states) > limit {
		states, more = states[:limit], true
	}
	if more {
		last = states[len(states)-1].Key
	}
	return withPending(states, pending, last), more, nil
}

// scanKV reads up to limit entries of kv after `after`, in key order, of
// about ScanBytes of values at most, and whether there may be more.
func scanKV(ctx context.Context, tx *sql.Tx, after string, limit int) (states []protocol.KeyState, more bool, err error) {
	rows, err := tx.QueryContext(ctx, `SELECT key, value, binary, version FROM kv WHERE key > ? ORDER BY key LIMIT ?`, after, limit)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	size := 0
	for size < ScanBytes && rows.Next() {
		ks := protocol.KeyState{Entry: protocol.Entry{Found: true}}
		if err := rows.Scan(&ks.Key, &ks.Entry.Value.Data, &ks.Entry.Value.Binary, &ks.Entry.Version); err != nil {
			return nil, false, err
		}
		if ks.Entry.Value.Data == nil {
			ks.Entry.Value.Data = []byte{}
		}
		states = append(states, ks)
		size += len(ks.Key) + len(ks.Entry.Value.Data)
	}
	return states, len(states) == limit || size >= ScanBytes, rows.Err()
}

// overlay lays committed writes not yet in kv over a page of kv, both in
// key order. A key such a write deleted stays, not found, so that a page
// of kv is never emptied (an empty page ends a catch-up's scan).
func overlay(states []protocol.KeyState, over []protocol.Write) []protocol.KeyState {
	if len(over) == 0 {
		return states
	}
	out := make([]protocol.KeyState, 0, len(states)+len(over))
	i := 0
	for _, w := range over {
		for ; i < len(states) && states[i].Key < w.Key; i++ {
			out = append(out, states[i])
		}
		if i < len(states) && states[i].Key == w.Key {
			i++
		}
		out = append(out, protocol.KeyState{Key: w.Key, Entry: entry(w)})
	}
	return append(out, states[i:]...)
}
