package participant

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// readKey returns the committed value and any prepared write of one key
// in a single statement, hence from one consistent snapshot.
const readKey = `
SELECT 0, value, binary, '', 0 FROM kv WHERE key = ?1
UNION ALL
SELECT 1, value, binary, txid, op FROM prepared WHERE key = ?1`

// Read returns a consistent snapshot of key: committed value and pending
// write, if any. It runs concurrently with the writer (WAL readers).
func (s *Store) Read(ctx context.Context, key string) (ReadResult, error) {
	if err := s.failedErr(); err != nil {
		return ReadResult{}, err
	}
	rows, err := s.rdb.QueryContext(ctx, readKey, key)
	if err != nil {
		return ReadResult{}, fmt.Errorf("participant: read: %w", err)
	}
	defer rows.Close()
	var res ReadResult
	for rows.Next() {
		var (
			pending bool
			v       Value
			txid    string
			op      Op
		)
		if err := rows.Scan(&pending, &v.Data, &v.Binary, &txid, &op); err != nil {
			return ReadResult{}, fmt.Errorf("participant: read: %w", err)
		}
		if v.Data == nil {
			v.Data = []byte{}
		}
		if pending {
			res.Pending = txid
			res.Write = Write{Key: key, Op: op, Value: v}
		} else {
			res.Found, res.Value = true, v
		}
	}
	if err := rows.Err(); err != nil {
		return ReadResult{}, fmt.Errorf("participant: read: %w", err)
	}
	return res, nil
}

// Digest hashes the committed data in key order, so two replicas holding
// the same data give the same digest. Each pair is hashed length-prefixed
// so that no two different data sets share a byte stream.
func (s *Store) Digest(ctx context.Context) (Digest, error) {
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Digest{}, fmt.Errorf("participant: digest: %w", err)
	}
	defer tx.Rollback()
	var d Digest
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM prepared`).Scan(&d.Prepared); err != nil {
		return Digest{}, fmt.Errorf("participant: digest: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT key, value, binary FROM kv ORDER BY key`)
	if err != nil {
		return Digest{}, fmt.Errorf("participant: digest: %w", err)
	}
	defer rows.Close()
	h := sha256.New()
	var buf [binary.MaxVarintLen64]byte
	for rows.Next() {
		var (
			key   string
			value []byte
			bin   bool
		)
		if err := rows.Scan(&key, &value, &bin); err != nil {
			return Digest{}, fmt.Errorf("participant: digest: %w", err)
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
		d.Keys++
	}
	if err := rows.Err(); err != nil {
		return Digest{}, fmt.Errorf("participant: digest: %w", err)
	}
	d.Hash = hex.EncodeToString(h.Sum(nil))
	return d, nil
}
