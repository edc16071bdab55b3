package participant

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"

	"github.com/twopc/twopc/protocol"
)

// readKey returns the committed entry and any prepared write of one key
// in a single statement.
const readKey = `
SELECT 0, 1, value, binary, version, '' FROM kv WHERE key = ?1
UNION ALL
SELECT 1, found, value, binary, version, txid FROM prepared_writes WHERE key = ?1`

// Read returns each key's state (committed entry, and the pending write
// of a transaction holding it prepared) from one consistent snapshot. It
// runs concurrently with the writer (WAL readers).
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
	for i, key := range keys {
		if out[i], err = readOne(ctx, tx, key); err != nil {
			return nil, fmt.Errorf("participant: read: %w", err)
		}
	}
	return out, nil
}

func readOne(ctx context.Context, tx *sql.Tx, key string) (protocol.KeyState, error) {
	ks := protocol.KeyState{Key: key}
	rows, err := tx.QueryContext(ctx, readKey, key)
	if err != nil {
		return ks, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			pending bool
			e       protocol.Entry
			txid    string
		)
		if err := rows.Scan(&pending, &e.Found, &e.Value.Data, &e.Value.Binary, &e.Version, &txid); err != nil {
			return ks, err
		}
		if e.Found && e.Value.Data == nil {
			e.Value.Data = []byte{}
		}
		if pending {
			ks.Pending, ks.Next = txid, e
		} else {
			ks.Entry = e
		}
	}
	return ks, rows.Err()
}

// Batch runs many calls at once. Its prepares, commits and aborts are
// applied in one SQLite transaction (one fsync for all of them), in
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
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return protocol.Digest{}, fmt.Errorf("participant: digest: %w", err)
	}
	defer tx.Rollback()
	var d protocol.Digest
	if err := tx.QueryRowContext(ctx, `SELECT count(DISTINCT txid) FROM prepared_writes`).Scan(&d.Prepared); err != nil {
		return protocol.Digest{}, fmt.Errorf("participant: digest: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT key, value, binary, version FROM kv ORDER BY key`)
	if err != nil {
		return protocol.Digest{}, fmt.Errorf("participant: digest: %w", err)
	}
	defer rows.Close()
	h := sha256.New()
	var buf [binary.MaxVarintLen64]byte
	for rows.Next() {
		var (
			key     string
			value   []byte
			bin     bool
			version int64
		)
		if err := rows.Scan(&key, &value, &bin, &version); err != nil {
			return protocol.Digest{}, fmt.Errorf("participant: digest: %w", err)
		}
		h.Write(buf[:binary.PutUvarint(buf[:], uint64(len(key)))])
		h.Write([]byte(key))
		if bin {
			h.Write([]byte{1})
		} else {
			h.Write([]byte{0})
		}
		h.Write(buf[:binary.PutUvarint(buf[:], uint64(len(value)))])
		h.Write(value)
		h.Write(buf[:binary.PutVarint(buf[:], version)])
		d.Keys++
	}
	if err := rows.Err(); err != nil {
		return protocol.Digest{}, fmt.Errorf("participant: digest: %w", err)
	}
	d.Hash = hex.EncodeToString(h.Sum(nil))
	return d, nil
}
