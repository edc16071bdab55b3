package participant

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twopc/twopc/protocol"
	"github.com/twopc/twopc/txlog"
)

// The vote log. A batch's prepares, commits and aborts are made durable
// by one write and one fsync of an append-only file next to the
// database, not by a SQLite commit: a SQLite commit of the same rows
// wrote each row into a B-tree, wrote every page it touched to the WAL
// twice over (two pwrites a page) and then deleted the rows again once
// their writes were in kv. SQLite keeps kv (applied in bulk, apply.go),
// meta, and which vote log is current.
//
// The file is <db>-votes.<n>, n in meta 'votes'; lines are framed as the
// coordinator's log is (txlog.AppendFramed: a CRC-32C, then the body),
// so a crash in the middle of a write leaves a torn tail that opening
// cuts, by the txlog's rules; and it is padded with blank lines past its
// end, as that log is (txlog.Appender), for the cheaper fsync. The bodies:
//
//	votes 1                                the first line
//	prepare <txid> <n> <write>...           a YES vote's writes, n of them
//	commit <txid>                           txid's writes are committed
//	abort <txid>                            txid's writes are discarded
//	write <write>                           committed, not yet in kv (a snapshot's)
//
// where <write> is "<found><binary> <version> <key> <value>", found and
// binary 0 or 1, and txids, keys and values are strconv.Quote'd, so
// that any byte string stays on one line and in one field.
//
// Replaying the lines in order rebuilds what the writer held in memory:
// the prepared transactions, and the committed writes not yet in kv
// (later lines win, so a key ends at its latest write; writes kv already
// holds are written again, which changes nothing). The file grows until
// it passes rotateVoteLogBytes, or a catch-up changes kv under it; then
// a batch writes the next file, a snapshot of that memory, makes it
// durable, and names it in meta in its SQLite transaction: before that
// commit the old file is current, after it the new one. Open always
// rotates, which leaves the file it read behind, torn tail and all.
type voteLog struct {
	db       string // the database's path; files are db-votes.<gen>
	gen      int64
	f        *txlog.Appender // padded past its end: see txlog.PadBytes
	size     int64
	rotateAt int64  // the size past which a batch rotates,
	base     int64  // or twice the size the last rotation left, if more
	buf      []byte // the batch's lines, not yet written
	old      string // a file a rotation replaced, removed once meta names the new one
}

const (
	voteLogHeader      = "votes 1"
	metaVotes          = "votes"
	rotateVoteLogBytes = 8 << 20
	maxKeptVoteBuffer  = 1 << 20
)

func (l *voteLog) path(gen int64) string { return l.db + "-votes." + strconv.FormatInt(gen, 10) }

// appendPrepare, appendCommit and appendAbort add a record to the batch.
func (l *voteLog) appendPrepare(txid string, writes []protocol.Write) {
	l.buf = appendPrepareLine(l.buf, txid, writes)
}

func (l *voteLog) appendCommit(txid string) { l.buf = appendIDLine(l.buf, "commit ", txid) }
func (l *voteLog) appendAbort(txid string)  { l.buf = appendIDLine(l.buf, "abort ", txid) }

func appendPrepareLine(dst []byte, txid string, writes []protocol.Write) []byte {
	body := strconv.AppendQuote([]byte("prepare "), txid)
	body = append(body, ' ')
	body = strconv.AppendInt(body, int64(len(writes)), 10)
	for _, w := range writes {
		body = appendWrite(append(body, ' '), w)
	}
	return txlog.AppendFramed(dst, body)
}

func appendIDLine(dst []byte, kind, txid string) []byte {
	return txlog.AppendFramed(dst, strconv.AppendQuote([]byte(kind), txid))
}

func appendWrite(dst []byte, w protocol.Write) []byte {
	dst = append(dst, bit(w.Found), bit(w.Value.Binary), ' ')
	dst = strconv.AppendInt(dst, w.Version, 10)
	dst = strconv.AppendQuote(append(dst, ' '), w.Key)
	return strconv.AppendQuote(append(dst, ' '), string(w.Value.Data))
}

func bit(b bool) byte {
	if b {
		return '1'
	}
	return '0'
}

// flush writes the batch's lines and makes them durable.
func (l *voteLog) flush(fsyncs *atomic.Uint64) error {
	if len(l.buf) == 0 {
		return nil
	}
	n, err := l.f.Write(l.buf)
	l.size += int64(n)
	if err == nil {
		err = l.f.Sync()
		fsyncs.Add(1)
	}
	l.buf = l.buf[:0]
	if cap(l.buf) > maxKeptVoteBuffer {
		l.buf = nil // a batch of large values: do not keep its memory
	}
	if err != nil {
		return fmt.Errorf("vote log %s: %w", l.f.Name(), err)
	}
	return nil
}

// rotate writes the next file, snapshot's lines after the header, and
// makes it and its name durable; setMeta must then name it in the
// batch's SQLite transaction. The old file goes once that has committed
// (retire).
func (l *voteLog) rotate(snapshot []byte, setMeta func(gen int64) error) error {
	next := l.gen + 1
	file, err := os.OpenFile(l.path(next), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("vote log: %w", err)
	}
	f, err := txlog.NewAppender(file, 0)
	if err != nil {
		file.Close()
		return fmt.Errorf("vote log: %w", err)
	}
	data := append(txlog.AppendFramed(nil, []byte(voteLogHeader)), snapshot...)
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = txlog.SyncDir(l.db)
	}
	if err == nil {
		err = setMeta(next)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("vote log %s: %w", f.Name(), err)
	}
	if l.f != nil {
		l.f.Close()
		l.old = l.path(l.gen)
	}
	l.f, l.gen, l.size, l.base = f, next, int64(len(data)), int64(len(data))
	return nil
}

// due says whether the file has grown enough to be replaced: past
// rotateAt, and to twice what the last rotation wrote, so that a large
// snapshot (many or large prepared transactions) is not rewritten at
// every batch.
func (l *voteLog) due() bool { return l.size >= max(l.rotateAt, 2*l.base) }

// retire removes the file the last rotation replaced, once the SQLite
// transaction naming its successor has committed, and any other vote
// log of this database (left by a crash between a rotation's two steps).
func (l *voteLog) retire() error {
	l.old = ""
	dir, prefix := filepath.Dir(l.db), filepath.Base(l.db)+"-votes."
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		n, err := strconv.ParseInt(strings.TrimPrefix(e.Name(), prefix), 10, 64)
		if !strings.HasPrefix(e.Name(), prefix) || err != nil || n < 0 || n == l.gen {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (l *voteLog) close() error {
	if l.f == nil {
		return nil
	}
	return l.f.Close()
}

// voteRecord is one line of a vote log, parsed.
type voteRecord struct {
	kind   string // prepare, commit, abort, write
	txid   string
	writes []protocol.Write // prepare: its writes; write: the one
}

// readVoteLog hands each record of the file at path to f, in order, and
// stops at a torn tail. A missing file is an error: meta names it, so
// it was made durable before anything relied on it.
func readVoteLog(path string, f func(voteRecord) error) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("vote log: %w", err)
	}
	header := false
	_, err = txlog.EachLine(data, func(off int, body []byte) error {
		if off == 0 {
			if string(body) != voteLogHeader {
				return fmt.Errorf("first line %.64q, want %q (written by a newer twopc?)", body, voteLogHeader)
			}
			header = true
			return nil
		}
		r, err := parseVoteRecord(string(body))
		if err != nil {
			return err
		}
		return f(r)
	})
	if err == nil && !header {
		// A rotation makes the header durable before meta names the
		// file: without it, the file is not the one meta named.
		err = fmt.Errorf("no %q line: damaged, or not a vote log", voteLogHeader)
	}
	if err != nil {
		return fmt.Errorf("vote log %s: %w", path, err)
	}
	return nil
}

func parseVoteRecord(body string) (voteRecord, error) {
	kind, rest, _ := strings.Cut(body, " ")
	r := voteRecord{kind: kind}
	var err error
	switch kind {
	case "prepare", "commit", "abort":
		if r.txid, rest, err = quoted(rest); err != nil {
			return r, fmt.Errorf("%s: txid: %v", kind, err)
		}
	case "write":
		rest = " " + rest
	default:
		return r, fmt.Errorf("unknown record %.64q", kind)
	}
	n := 0
	switch kind {
	case "prepare":
		var count string
		count, rest, _ = strings.Cut(strings.TrimPrefix(rest, " "), " ")
		if n, err = strconv.Atoi(count); err != nil || n < 1 {
			return r, fmt.Errorf("prepare: %.64q writes", count)
		}
		rest = " " + rest
	case "write":
		n = 1
	}
	for range n {
		var w protocol.Write
		if w, rest, err = parseWrite(rest); err != nil {
			return r, fmt.Errorf("%s %.64q: %v", kind, r.txid, err)
		}
		r.writes = append(r.writes, w)
	}
	if rest != "" {
		return r, fmt.Errorf("%s: %.64q left over", kind, rest)
	}
	return r, nil
}

// parseWrite parses " <write>" off the front of s.
func parseWrite(s string) (protocol.Write, string, error) {
	var w protocol.Write
	if len(s) < 4 || s[0] != ' ' || s[3] != ' ' || !isBit(s[1]) || !isBit(s[2]) {
		return w, "", fmt.Errorf("write %.16q: want <found><binary> flags", s)
	}
	w.Found, w.Value.Binary = s[1] == '1', s[2] == '1'
	version, rest, _ := strings.Cut(s[4:], " ")
	var err error
	if w.Version, err = strconv.ParseInt(version, 10, 64); err != nil {
		return w, "", fmt.Errorf("version: %v", err)
	}
	if w.Key, rest, err = quoted(rest); err != nil {
		return w, "", fmt.Errorf("key: %v", err)
	}
	var value string
	if value, rest, err = quoted(strings.TrimPrefix(rest, " ")); err != nil {
		return w, "", fmt.Errorf("value: %v", err)
	}
	if w.Found {
		w.Value.Data = []byte(value)
	}
	return w, rest, nil
}

func isBit(c byte) bool { return c == '0' || c == '1' }

// quoted unquotes the quoted string s starts with and returns the rest.
func quoted(s string) (string, string, error) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", err
	}
	v, err := strconv.Unquote(q)
	return v, s[len(q):], err
}

// makeDurable writes the batch's vote records and fsyncs them, in the
// writer's batch (tx). If the file is due for rotation, or the batch
// changed kv under it (a catch-up), it then writes the next file, which
// tx names in meta.
func (s *Store) makeDurable(tx *wtx) error {
	start := time.Now()
	err := s.votes.flush(&s.stats.fsyncs)
	if err == nil && (s.rotateVotes || s.votes.due()) {
		err = s.votes.rotate(s.snapshotLocked(), func(gen int64) error {
			return tx.exec(stSetMeta, metaVotes, strconv.FormatInt(gen, 10))
		})
		s.rotateVotes = err != nil
		s.stats.fsyncs.Add(2)
	}
	s.voteSync = time.Since(start)
	return err
}

// snapshotLocked is what a new vote log holds after its header: every
// prepared transaction, and every committed write not yet in kv.
func (s *Store) snapshotLocked() []byte {
	var b []byte
	for txid, p := range s.prepared {
		b = appendPrepareLine(b, txid, p.writes)
	}
	for _, w := range s.over {
		b = txlog.AppendFramed(b, appendWrite([]byte("write "), w))
	}
	return b
}

// openVotes replays the current vote log onto what reload read, then
// rotates: the new file holds that state, in meta's SQLite transaction,
// which also empties the tables a database of an older twopc kept its
// prepared and committed rows in (reload read them).
func (s *Store) openVotes() error {
	var gen string
	err := s.wdb.QueryRow(`SELECT value FROM meta WHERE name = ?`, metaVotes).Scan(&gen)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("vote log: %w", err)
	default:
		if s.votes.gen, err = strconv.ParseInt(gen, 10, 64); err != nil || s.votes.gen < 1 {
			return fmt.Errorf("vote log: meta names generation %q", gen)
		}
		if err := readVoteLog(s.votes.path(s.votes.gen), s.replayVote); err != nil {
			return err
		}
	}
	tx, err := s.wdb.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{`DELETE FROM prepared_writes`, `DELETE FROM committed`} {
		if _, err := tx.Exec(q); err != nil {
			return err
		}
	}
	err = s.votes.rotate(s.snapshotLocked(), func(gen int64) error {
		_, err := tx.Exec(writerSQL[stSetMeta], metaVotes, strconv.FormatInt(gen, 10))
		return err
	})
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		return err
	}
	if err := s.votes.retire(); err != nil {
		s.log.Warn("participant: could not remove an older vote log", "db", s.path, "err", err)
	}
	return nil
}

// replayVote applies one record of the vote log at open.
func (s *Store) replayVote(r voteRecord) error {
	switch r.kind {
	case "prepare":
		s.prepared[r.txid] = &preparedTx{writes: r.writes}
		for _, w := range r.writes {
			s.locks[w.Key] = r.txid
		}
	case "commit":
		if p, ok := s.prepared[r.txid]; ok {
			s.committedLocked(r.txid, p)
		}
	case "abort":
		if p, ok := s.prepared[r.txid]; ok {
			s.unlockLocked(r.txid, p)
		}
	case "write":
		s.setOver(r.writes[0])
	}
	return nil
}
