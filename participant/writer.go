package participant

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/twopc/twopc/protocol"
)

// writer is the writer goroutine's SQLite connection, driven through the
// driver's own statements rather than database/sql's: per statement,
// database/sql bound a copy of the prepared statement to the transaction,
// recorded its dependencies and routed the call through its locks and
// context checks, which profiles showed costing a tenth of a
// participant's CPU at 64 clients. The statements are prepared once, on
// the one connection of the writer's pool, and used only inside that
// connection's Raw callbacks, as database/sql requires.
type writer struct {
	commits atomic.Uint64 // SQLite commits
	conn    *sql.Conn
	stmts   [nStmts]*sqlite3.SQLiteStmt
	cache   *kvCache // kv's entries, as of the open transaction
	// beforeBegin, if set, runs before a transaction begins: the store's
	// writer waits there for the apply step that runs (applier.go), which
	// would otherwise wait for the writer's transaction, or the writer
	// for it, in SQLite's busy handler.
	beforeBegin func() error
}

// The writer's statements.
const (
	stReadKV = iota
	stUpsertKV
	stDeleteKV
	stDeleteAllKV
	stSetMeta
	nStmts
)

var writerSQL = [nStmts]string{
	stReadKV: `SELECT value, binary, version FROM kv WHERE key = ?`,
	stUpsertKV: `INSERT INTO kv (key, value, binary, version) VALUES (?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, binary = excluded.binary, version = excluded.version`,
	stDeleteKV:    `DELETE FROM kv WHERE key = ?`,
	stDeleteAllKV: `DELETE FROM kv`, // catch-up (Install) only
	stSetMeta: `INSERT INTO meta (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
}

// openWriter takes db's connection for the writer and prepares its
// statements on it. cacheBytes bounds its cache of kv (negative: off).
func openWriter(db *sql.DB, cacheBytes int) (*writer, error) {
	conn, err := db.Conn(context.Background())
	if err != nil {
		return nil, err
	}
	w := &writer{conn: conn, cache: newKVCache(cacheBytes)}
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*sqlite3.SQLiteConn)
		if !ok {
			return fmt.Errorf("want a go-sqlite3 connection, got %T", dc)
		}
		for i, q := range writerSQL {
			st, err := c.Prepare(q)
			if err != nil {
				return err
			}
			w.stmts[i] = st.(*sqlite3.SQLiteStmt)
		}
		return w.loadCache(c)
	})
	if err != nil {
		return nil, errors.Join(err, w.close())
	}
	return w, nil
}

// close closes the statements and gives the connection back to its pool.
func (w *writer) close() error {
	err := w.conn.Raw(func(any) error {
		var errs []error
		for _, st := range w.stmts {
			if st != nil {
				errs = append(errs, st.Close())
			}
		}
		return errors.Join(errs...)
	})
	return errors.Join(err, w.conn.Close())
}

// inTx runs f with a write transaction that begins (BEGIN IMMEDIATE, the
// pool's _txlock) at f's first statement, if any, and commits after f,
// unless f fails: then it rolls back. A batch whose votes go to the vote
// log alone touches no SQLite at all. beforeCommit, if not nil, runs
// just before the commit. It returns how long the commit, and with it
// the WAL's fsync, took (0: nothing to commit).
func (w *writer) inTx(f func(*wtx) error, beforeCommit func()) (commit time.Duration, err error) {
	defer func() {
		if err != nil {
			w.cache.reset() // kv did not change the way the cache did
		}
	}()
	err = w.conn.Raw(func(dc any) error {
		t := &wtx{w: w, c: dc.(*sqlite3.SQLiteConn)}
		if err := f(t); err != nil {
			if t.tx != nil {
				err = errors.Join(err, t.tx.Rollback())
			}
			return err
		}
		if beforeCommit != nil {
			beforeCommit()
		}
		if t.tx == nil {
			return nil
		}
		start := time.Now()
		if err := t.tx.Commit(); err != nil {
			return err
		}
		commit = time.Since(start)
		w.commits.Add(1)
		return nil
	})
	return commit, err
}

// wtx is the writer's transaction, begun at its first statement: its
// statements, with their arguments in the order of writerSQL's
// placeholders.
type wtx struct {
	w    *writer
	c    *sqlite3.SQLiteConn
	tx   driver.Tx // nil until the first statement
	args [6]driver.NamedValue
	dest [3]driver.Value
}

func (t *wtx) exec(st int, args ...driver.Value) error {
	if t.tx == nil {
		if t.w.beforeBegin != nil {
			if err := t.w.beforeBegin(); err != nil {
				return err
			}
		}
		tx, err := t.c.Begin()
		if err != nil {
			return err
		}
		t.tx = tx
	}
	nv := t.args[:len(args)]
	for i, a := range args {
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	_, err := t.w.stmts[st].ExecContext(context.Background(), nv)
	return err
}

// readKV reads key's committed entry, from the cache if it is there.
func (t *wtx) readKV(key string) (protocol.Entry, error) {
	if e, ok := t.w.cache.get(key); ok {
		t.w.cache.hits.Add(1)
		return e, nil
	}
	t.w.cache.queries.Add(1)
	e, err := t.queryKV(key)
	if err == nil {
		t.w.cache.set(key, e)
	}
	return e, err
}

func (t *wtx) queryKV(key string) (protocol.Entry, error) {
	t.args[0] = driver.NamedValue{Ordinal: 1, Value: key}
	rows, err := t.w.stmts[stReadKV].QueryContext(context.Background(), t.args[:1])
	if err != nil {
		return protocol.Entry{}, err
	}
	defer rows.Close()
	switch err := rows.Next(t.dest[:]); {
	case err == io.EOF:
		return protocol.Entry{}, nil
	case err != nil:
		return protocol.Entry{}, err
	}
	return kvEntry(key, t.dest[:])
}

// kvEntry is the entry of a kv row found, from its value, binary and
// version columns.
func kvEntry(key string, cols []driver.Value) (protocol.Entry, error) {
	e := protocol.Entry{Found: true}
	switch v := cols[0].(type) {
	case []byte:
		e.Value.Data = v
	case string:
		e.Value.Data = []byte(v)
	default:
		e.Value.Data = []byte{}
	}
	binary, ok1 := cols[1].(int64)
	version, ok2 := cols[2].(int64)
	if !ok1 || !ok2 {
		return protocol.Entry{}, fmt.Errorf("kv row of %.64q: binary %T, version %T: want integers", key, cols[1], cols[2])
	}
	e.Value.Binary, e.Version = binary != 0, version
	return e, nil
}

// loadCache fills the cache from kv, in key order, until it is full. If
// all of kv fits, the cache is complete: a key it does not hold is not in
// kv, and no prepare queries SQLite until the cache first drops an entry.
func (w *writer) loadCache(c *sqlite3.SQLiteConn) error {
	if w.cache.maxBytes == 0 {
		return nil
	}
	rows, err := c.Query(`SELECT key, value, binary, version FROM kv ORDER BY key`, nil)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols := make([]driver.Value, 4)
	for {
		switch err := rows.Next(cols); {
		case err == io.EOF:
			w.cache.complete = true // loadCache is not called when the cache is off
			return nil
		case err != nil:
			return err
		}
		key, ok := cols[0].(string)
		if !ok {
			return fmt.Errorf("kv key of type %T, want text", cols[0])
		}
		e, err := kvEntry(key, cols[1:])
		if err != nil {
			return err
		}
		if !w.cache.fits(key, e) {
			return nil
		}
		w.cache.set(key, e)
	}
}

// applyWrite stores w's entry in kv, or deletes its key if the entry is
// not found.
func (t *wtx) applyWrite(w protocol.Write) error {
	var err error
	if w.Found {
		err = t.exec(stUpsertKV, w.Key, w.Value.Data, w.Value.Binary, w.Version)
	} else {
		err = t.exec(stDeleteKV, w.Key)
	}
	if err == nil {
		t.w.cache.set(w.Key, asRead(w))
	}
	return err
}

// asRead is w's entry as queryKV would read it back from kv.
func asRead(w protocol.Write) protocol.Entry {
	if !w.Found {
		return protocol.Entry{}
	}
	e := entry(w)
	if e.Value.Data == nil {
		e.Value.Data = []byte{}
	}
	return e
}

// deleteAllKV empties kv (a catch-up reset).
func (t *wtx) deleteAllKV() error {
	err := t.exec(stDeleteAllKV)
	if err == nil {
		t.w.cache.emptied()
	}
	return err
}
