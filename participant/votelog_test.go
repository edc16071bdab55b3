package participant

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twopc/twopc/protocol"
	"github.com/twopc/twopc/txlog"
)

// Every record survives its line: keys and values with spaces, newlines,
// quotes and bytes that are not UTF-8, empty and absent values.
func TestVoteRecordsRoundTrip(t *testing.T) {
	ws := []protocol.Write{
		{Key: "plain", Entry: protocol.Entry{Found: true, Value: protocol.Value{Data: []byte("v")}, Version: 1}},
		{Key: "a key\nwith \"lines\"", Entry: protocol.Entry{Found: true, Value: protocol.Value{Data: []byte{0, 0xff, ' ', '\n', '"'}, Binary: true}, Version: 1 << 62}},
		{Key: "empty", Entry: protocol.Entry{Found: true, Value: protocol.Value{Data: []byte{}}, Version: 7}},
		{Key: "gone", Entry: protocol.Entry{Version: 3}},
	}
	var b []byte
	b = appendPrepareLine(b, "1.2 3", ws)
	b = appendIDLine(b, "commit ", "1.2 3")
	b = appendIDLine(b, "abort ", "4.5")
	for _, w := range ws {
		b = txlog.AppendFramed(b, appendWrite([]byte("write "), w))
	}
	want := []voteRecord{{kind: "prepare", txid: "1.2 3", writes: ws}, {kind: "commit", txid: "1.2 3"}, {kind: "abort", txid: "4.5"}}
	for _, w := range ws {
		want = append(want, voteRecord{kind: "write", writes: []protocol.Write{w}})
	}
	var got []voteRecord
	end, err := txlog.EachLine(b, func(_ int, body []byte) error {
		r, err := parseVoteRecord(string(body))
		got = append(got, r)
		return err
	})
	if err != nil || end != len(b) {
		t.Fatalf("read %d of %d bytes: %v", end, len(b), err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("records read back:\n%+v\nwant\n%+v", got, want)
	}
	for _, bad := range []string{
		`prepare "1.1" 2 11 1 "k" "v"`, // one write of two
		`prepare "1.1" 0`,
		`prepare "1.1" 1 21 1 "k" "v"`,
		`prepare "1.1" 1 11 x "k" "v"`,
		`prepare "1.1" 1 11 1 "k" "v" extra`,
		`commit 1.1`,
		`write 11 1 "k"`,
		`staged "1.1"`,
	} {
		if r, err := parseVoteRecord(bad); err == nil {
			t.Errorf("%q parsed as %+v", bad, r)
		}
	}
}

// crashCopies runs steps on a store, each its own batch, and keeps a copy
// of the database's files as a crash would leave them at each batch's
// last moment before its SQLite commit (its vote log durable, its SQLite
// transaction not), with what the store showed after that step.
type crashPoint struct {
	path     string
	entries  map[string]protocol.KeyState
	prepared []string
}

func prepareIDs(t *testing.T, s *Store) []string {
	t.Helper()
	ps, err := s.PreparedTxs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.TxID)
	}
	slices.Sort(ids)
	return ids
}

func readAll(t *testing.T, s *Store, keys []string) map[string]protocol.KeyState {
	t.Helper()
	st, err := s.Read(ctx, keys...)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]protocol.KeyState{}
	for _, k := range st {
		m[k.Key] = k
	}
	return m
}

// A crash at any batch, rotating the vote log at every batch or never,
// loses nothing that batch made durable and brings back nothing it had
// discarded: a reopened copy reads what the store read after that batch.
func TestVoteLogCrashAtEveryBatch(t *testing.T) {
	keys := []string{"a", "b", "c", "d"}
	for _, rotateAt := range []int64{1, 1 << 30} {
		t.Run(fmt.Sprintf("rotate at %d bytes", rotateAt), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "p.db")
			var copies []string
			opts := Options{applyEvery: -1, voteLogBytes: rotateAt, atCommit: func(bool) {
				c := filepath.Join(dir, fmt.Sprintf("crash%02d.db", len(copies)))
				copyDB(t, path, c)
				copies = append(copies, c)
			}}
			if rotateAt > 1 {
				opts.applyEvery = lazy.applyEvery // commits wait in the log
			}
			s := openWith(t, path, opts)
			var points []crashPoint
			step := func(f func()) {
				t.Helper()
				n := len(copies)
				f()
				if len(copies) != n+1 {
					t.Fatalf("a step made %d batches, want 1", len(copies)-n)
				}
				points = append(points, crashPoint{copies[n], readAll(t, s, keys), prepareIDs(t, s)})
			}
			do := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			step(func() { mustVote(t, s, "1.1", put("a", "1"), yes) })
			step(func() { do(s.Commit(ctx, "1.1")) })
			step(func() { mustVote(t, s, "1.2", put("b", "2"), yes) })
			step(func() { do(s.Abort(ctx, "1.2")) })
			step(func() { mustVote(t, s, "1.3", put("c", "3"), yes) })
			step(func() {
				mustVote(t, s, "1.4", txn(protocol.Op{Kind: protocol.OpPut, Key: "a", Value: protocol.Value{Data: []byte("4")}},
					protocol.Op{Kind: protocol.OpPut, Key: "d", Value: protocol.Value{Data: []byte("4")}}), yes)
			})
			step(func() { do(s.Commit(ctx, "1.4")) })
			step(func() { mustVote(t, s, "1.5", del("d"), yes) })
			step(func() { do(s.Commit(ctx, "1.5")) })
			for i, p := range points {
				c := openWith(t, p.path, lazy)
				got, gotPrepared := readAll(t, c, keys), prepareIDs(t, c)
				if !reflect.DeepEqual(got, p.entries) || !slices.Equal(gotPrepared, p.prepared) {
					t.Fatalf("crash at batch %d: reopened with %+v, prepared %v; the store had %+v, prepared %v",
						i, got, gotPrepared, p.entries, p.prepared)
				}
				c.Close()
			}
		})
	}
}

// A catch-up replaces kv under the vote log: commits logged before it
// must not come back over the copy after a crash.
func TestInstallRotatesTheVoteLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.db")
	s := openWith(t, path, lazy)
	commit(t, s, "1.1", put("a", "old"))
	if err := s.Install(ctx, &protocol.Install{Reset: true, Fence: "3.10"}); err != nil {
		t.Fatal(err)
	}
	copied := []protocol.Write{{Key: "a", Entry: protocol.Entry{Found: true, Value: protocol.Value{Data: []byte("copied")}, Version: 5}}}
	if err := s.Install(ctx, &protocol.Install{Fence: "3.10", Writes: copied}); err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(dir, "crashed.db")
	copyDB(t, path, crashed)
	c := openWith(t, crashed, lazy)
	if got := mustRead(t, c, "a"); string(got.Entry.Value.Data) != "copied" || got.Entry.Version != 5 {
		t.Fatalf("after a crash, a reads %+v, want the copy's entry", got.Entry)
	}
}

// A torn last line is cut; damage followed by a whole line is refused,
// and says where.
func TestVoteLogTornTailAndDamage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.db")
	s := openWith(t, path, lazy)
	commit(t, s, "1.1", put("a", "1"))
	mustVote(t, s, "1.2", put("b", "2"), yes)
	long := protocol.Write{Key: "c", Entry: protocol.Entry{Found: true, Value: protocol.Value{Data: bytes.Repeat([]byte("v"), 1200)}, Version: 1}}
	overPadding := string(appendPrepareLine(nil, "1.3", []protocol.Write{long})) + string(appendIDLine(nil, "commit ", "1.2")) + strings.Repeat("\n", 600)
	for _, c := range []struct {
		name, tail, err string
	}{
		// One write over the padding whose first whole sector was lost
		// (loseSector below): the commit after it is not a record.
		{"torn over padding", overPadding, ""},
		{"torn", "0badc0de prepare \"1.3\" 1 11 1 \"c\"", ""},
		{"zeros", "\x00\x00\x00\x00\x00\x00", ""},
		{"bad checksum", "0badc0de commit \"1.2\"\n", ""},
		{"damaged", "0badc0de commit \"1.2\"\n" + string(appendIDLine(nil, "commit ", "1.2")), "a line with a good checksum follows"},
	} {
		t.Run(c.name, func(t *testing.T) {
			crashed := filepath.Join(dir, c.name+".db")
			copyDB(t, path, crashed)
			logs, _ := filepath.Glob(crashed + "-votes.*")
			// The tail goes after the last line, where the next write
			// would have gone, over the padding.
			data, err := os.ReadFile(logs[0])
			if err != nil {
				t.Fatal(err)
			}
			end := len(bytes.TrimRight(data, "\n")) + 1
			data = append(data[:end], c.tail...)
			if c.tail == overPadding {
				lost := (end/512 + 1) * 512
				copy(data[lost:lost+512], bytes.Repeat([]byte{'\n'}, 512))
			}
			if err := os.WriteFile(logs[0], data, 0o600); err != nil {
				t.Fatal(err)
			}
			o, err := Open(crashed, lazy)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "vote log") {
					t.Fatalf("open: %v, want an error saying %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			if got := mustRead(t, o, "a"); string(got.Entry.Value.Data) != "1" {
				t.Fatalf("a reads %+v", got.Entry)
			}
			if ids := prepareIDs(t, o); !slices.Equal(ids, []string{"1.2"}) {
				t.Fatalf("prepared %v, want 1.2", ids)
			}
		})
	}
}

// Open keeps one vote log, the one meta names: it removes a file left
// by a crash between a rotation's steps, and refuses to open if the
// named one is missing (its prepared transactions would be lost).
func TestVoteLogFilesAtOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.db")
	s := openWith(t, path, lazy)
	mustVote(t, s, "1.1", put("a", "1"), yes)
	s.Close()
	stray := path + "-votes.99"
	if err := os.WriteFile(stray, []byte("left by a crash"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openWith(t, path, lazy)
	if ids := prepareIDs(t, s); !slices.Equal(ids, []string{"1.1"}) {
		t.Fatalf("prepared %v after a reopen, want 1.1", ids)
	}
	s.Close()
	logs, _ := filepath.Glob(path + "-votes.*")
	if len(logs) != 1 || logs[0] == stray {
		t.Fatalf("vote logs after open: %v, want one, not %s", logs, stray)
	}
	// Emptied, or gone: what it held is lost, so Open refuses.
	for _, damage := range []func() error{
		func() error { return os.Truncate(logs[0], 0) },
		func() error { return os.Remove(logs[0]) },
	} {
		if err := damage(); err != nil {
			t.Fatal(err)
		}
		if o, err := Open(path, lazy); err == nil || !strings.Contains(err.Error(), logs[0]) {
			if o != nil {
				o.Close()
			}
			t.Fatalf("open with the vote log meta names damaged: %v", err)
		}
	}
}

// A second Open of a database open in this or another process is
// refused: it would replace the vote log the first one writes.
func TestOpenTwiceRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s := openWith(t, path, lazy)
	if o, err := Open(path, lazy); err == nil || !strings.Contains(err.Error(), "open in another process") {
		if o != nil {
			o.Close()
		}
		t.Fatalf("second open: %v", err)
	}
	s.Close()
	openWith(t, path, lazy)
}

// Prepared transactions larger than the rotation size do not make every
// batch write the vote log anew: it rotates once it has doubled.
func TestVoteLogRotatesAsItGrows(t *testing.T) {
	s := openWith(t, filepath.Join(t.TempDir(), "p.db"), Options{applyEvery: time.Hour, voteLogBytes: 256})
	for i := range 4 {
		mustVote(t, s, fmt.Sprintf("1.%d", i+1), put(fmt.Sprintf("k%d", i), strings.Repeat("v", 200)), yes)
	}
	gen := func() int64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.votes.gen
	}
	before := gen()
	for range 20 {
		mustVote(t, s, "2.1", txn(protocol.Op{Kind: protocol.OpGet, Key: "z"}), protocol.VoteReadOnly)
	}
	if after := gen(); after != before {
		t.Fatalf("20 read-only batches rotated the vote log %d times", after-before)
	}
}

// Close applies committed writes that a reopened store holds only from a
// snapshot (no commit since): a cleanly closed database has them in kv.
func TestCloseAppliesSnapshotWrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.db")
	s := openWith(t, path, lazy)
	commit(t, s, "1.1", put("a", "1"))
	first := filepath.Join(dir, "first.db")
	copyDB(t, path, first) // a crash: the commit is in the vote log only
	a := openWith(t, first, lazy)
	second := filepath.Join(dir, "second.db")
	copyDB(t, first, second) // a crash after reopening: a snapshot's write line
	a.Close()
	b, err := Open(second, lazy)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if kv := rawKV(t, second); kv["a"] != "1" {
		t.Fatalf("kv after a clean close: %v, want a=1", kv)
	}
}

// A database an older twopc left with rows in prepared_writes and
// committed opens with them, moves them into the vote log in the same
// step, and keeps them across a crash after that.
func TestVotesMoveFromOlderTables(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.db")
	s := openWith(t, path, lazy)
	s.Close()
	db, err := openDB(path, 1, "immediate")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO prepared_writes VALUES ('1.1', 'a', 1, 'committed', 0, 1), ('1.2', 'b', 1, 'prepared', 0, 1)`,
		`INSERT INTO committed VALUES (1, '1.1')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	check := func(s *Store, when string) {
		t.Helper()
		st := readAll(t, s, []string{"a", "b"})
		if a, b := st["a"], st["b"]; string(a.Entry.Value.Data) != "committed" || a.Pending != "" || b.Entry.Found || b.Pending != "1.2" {
			t.Fatalf("%s: a %+v, b %+v", when, a, b)
		}
	}
	s = openWith(t, path, lazy)
	check(s, "opened")
	var rows int
	if err := s.rdb.QueryRow(`SELECT (SELECT count(*) FROM prepared_writes) + (SELECT count(*) FROM committed)`).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("%d rows left in the older tables (%v)", rows, err)
	}
	crashed := filepath.Join(dir, "crashed.db")
	copyDB(t, path, crashed)
	check(openWith(t, crashed, lazy), "reopened after a crash")
}

// Any line parses to a record or an error, never a panic, and a record
// parsed writes back to a line that parses to the same record.
func FuzzParseVoteRecord(f *testing.F) {
	for _, s := range []string{
		`prepare "1.1" 2 11 1 "a" "v" 00 3 "b" ""`,
		`commit "1.1"`,
		`abort "2.3"`,
		`write 11 7 "k\n" "\x00\xff"`,
		`prepare "1.1" 1 11 1 "k" "v" extra`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r, err := parseVoteRecord(body)
		if err != nil {
			return
		}
		var line []byte
		switch r.kind {
		case "prepare":
			line = appendPrepareLine(nil, r.txid, r.writes)
		case "commit", "abort":
			line = appendIDLine(nil, r.kind+" ", r.txid)
		case "write":
			line = txlog.AppendFramed(nil, appendWrite([]byte("write "), r.writes[0]))
		}
		body2, err := txlog.Unframe(line[:len(line)-1])
		if err != nil {
			t.Fatal(err)
		}
		r2, err := parseVoteRecord(string(body2))
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", body, r, body2, r2, err)
		}
	})
}
