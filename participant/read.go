package participant

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/twopc/twopc/protocol"
)

// Read returns each key's state (committed entry, and the pending write
// of a transaction holding it prepared) as of one moment. It runs
// concurrently with the writer (WAL readers): kv is read under the
// view's read lock, so it cannot change beside the writes in memory.
func (s *Store) Read(ctx context.Context, keys ...string) ([]protocol.KeyState, error) {
	if err := s.fenceRead(ctx); err != nil {
		return nil, err
	}
	if err := s.failedErr(); err != nil {
		return nil, err
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("participant: read: %w", err)
	}
	defer tx.Rollback()
	out := make([]protocol.KeyState, len(keys))
	s.view.mu.RLock()
	defer s.view.mu.RUnlock()
	for i, key := range keys {
		ks := protocol.KeyState{Key: key}
		if p, ok := s.view.pending[key]; ok {
			ks.Pending, ks.Next = p.txid, p.next
		}
		if w, ok := s.view.over[key]; ok {
			ks.Entry = entry(w)
		} else if ks.Entry, err = readKV(ctx, tx, key); err != nil {
			return nil, fmt.Errorf("participant: read: %w", err)
		}
		out[i] = ks
	}
	return out, nil
}

func readKV(ctx context.Context, tx *sql.Tx, key string) (protocol.Entry, error) {
	e := protocol.Entry{Found: true}
	err := tx.QueryRowContext(ctx, `SELECT value, binary, version FROM kv WHERE key = ?`, key).Scan(&e.Value.Data, &e.Value.Binary, &e.Version)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return protocol.Entry{}, nil
	case err != nil:
		return protocol.Entry{}, err
	}
	if e.Value.Data == nil {
		e.Value.Data = []byte{}
	}
	return e, nil
}

// Batch runs many calls at once. Its prepares, commits and aborts are
// applied in one batch of the writer (one fsync for all of them), in
// order; its reads run concurrently on the read connections. Results are
// in the order of calls. A batch of a stale term is refused whole.
func (s *Store) Batch(ctx context.Context, calls []protocol.Call) []protocol.CallResult {
	results := make([]protocol.CallResult, len(calls))
	term, err := s.admitTerm(ctx, len(calls))
	if err == nil && !slices.ContainsFunc(calls, isWrite) {
		err = s.fenceRead(ctx) // writes raise the term in their own transaction
	}
	if err != nil {
		for i := range results {
			results[i].Err = err
		}
		return results
	}
	var writes []*request
	var at []int // index in calls of each write
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, c := range calls {
		switch c.Kind {
		case protocol.MsgRead:
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				results[i].Keys, results[i].Err = s.Read(ctx, c.Keys...)
			})
		case protocol.MsgPrepare, protocol.MsgCommit, protocol.MsgAbort:
			writes = append(writes, &request{kind: c.Kind, txid: c.TxID, txn: c.Txn, term: term})
			at = append(at, i)
		default:
			results[i].Err = fmt.Errorf("participant: a batch cannot carry %s", c.Kind)
		}
	}
	if len(writes) > 0 {
		err := s.submit(ctx, writes...)
		for j, r := range writes {
			res := &results[at[j]]
			res.Vote, res.Err = r.vote, r.err
			if err != nil {
				res.Err = err
			}
		}
	}
	wg.Wait()
	return results
}

func isWrite(c protocol.Call) bool {
	return c.Kind == protocol.MsgPrepare || c.Kind == protocol.MsgCommit || c.Kind == protocol.MsgAbort
}

// Digest hashes the committed data in key order, so two replicas holding
// the same data give the same digest. Each key, its value's type and
// bytes, and its version are hashed length-prefixed, so that no two
// different data sets share a byte stream.
func (s *Store) Digest(ctx context.Context) (protocol.Digest, error) {
	if err := s.fenceRead(ctx); err != nil {
		return protocol.Digest{}, err
	}
	if err := s.failedErr(); err != nil {
		return protocol.Digest{}, err
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return protocol.Digest{}, fmt.Errorf("participant: digest: %w", err)
	}
	defer tx.Rollback()
	var d protocol.Digest
	over, pending, err := s.pin(ctx, tx, "")
	if err != nil {
		return protocol.Digest{}, fmt.Errorf("participant: digest: %w", err)
	}
	d.Prepared = int64(countTxs(pending))
	rows, err := tx.QueryContext(ctx, `SELECT key, value, binary, version FROM kv ORDER BY key`)
	if err != nil {
		return protocol.Digest{}, fmt.Errorf("participant: digest: %w", err)
	}
	defer rows.Close()
	h := sha256.New()
	var buf [binary.MaxVarintLen64]byte
	add := func(key string, e protocol.Entry) {
		if !e.Found {
			return // deleted by a write not yet in kv
		}
		h.Write(buf[:binary.PutUvarint(buf[:], uint64(len(key)))])
		h.Write([]byte(key))
		if e.Value.Binary {
			h.Write([]byte{1})
		} else {
			h.Write([]byte{0})
		}
		h.Write(buf[:binary.PutUvarint(buf[:], uint64(len(e.Value.Data)))])
		h.Write(e.Value.Data)
		h.Write(buf[:binary.PutVarint(buf[:], e.Version)])
		d.Keys++
	}
	i := 0 // the next of over, which lies over kv in key order
	for rows.Next() {
		var key string
		e := protocol.Entry{Found: true}
		if err := rows.Scan(&key, &e.Value.Data, &e.Value.Binary, &e.Version); err != nil {
			return protocol.Digest{}, fmt.Errorf("participant: digest: %w", err)
		}
		for ; i < len(over) && over[i].Key < key; i++ {
			add(over[i].Key, entry(over[i]))
		}
		if i < len(over) && over[i].Key == key {
			e = entry(over[i])
			i++
		}
		add(key, e)
	}
	if err := rows.Err(); err != nil {
		return protocol.Digest{}, fmt.Errorf("participant: digest: %w", err)
	}
	for ; i < len(over); i++ {
		add(over[i].Key, entry(over[i]))
	}
	d.Hash = hex.EncodeToString(h.Sum(nil))
	return d, nil
}

// countTxs counts the transactions holding keys prepared.
func countTxs(pending map[string]pendingWrite) int {
	txs := map[string]bool{}
	for _, p := range pending {
		txs[p.txid] = true
	}
	return len(txs)
}
