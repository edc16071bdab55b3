package participant

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twopc/twopc/protocol"
)

// cacheMatchesKV fails t if an entry of s's kv cache differs from kv's row.
func cacheMatchesKV(t *testing.T, s *Store) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.w.inTx(func(tx *wtx) error {
		for k, cached := range s.w.cache.m {
			e, err := tx.queryKV(k)
			if err != nil {
				return err
			}
			if !sameEntry(cached, e) || (cached.Value.Data == nil) != (e.Value.Data == nil) {
				return fmt.Errorf("key %q: cached %+v, kv %+v", k, cached, e)
			}
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
}

func sameVote(a, b protocol.Vote) bool {
	return a.Kind == b.Kind && a.Succeeded == b.Succeeded && slices.EqualFunc(a.Results, b.Results, func(x, y protocol.Result) bool {
		return x.Kind == y.Kind && x.Version == y.Version && x.Existed == y.Existed && x.Found == y.Found &&
			string(x.Value.Data) == string(y.Value.Data) && (x.Value.Data == nil) == (y.Value.Data == nil)
	})
}

// Stores whose cache holds a few entries and keeps dropping them, or
// holds all of kv throughout, vote exactly as one without a cache,
// through puts, deletes, compares, gets, aborts and a catch-up reset; and
// their caches always match kv.
func TestKVCacheChangesNoVote(t *testing.T) {
	dir := t.TempDir()
	small := openWith(t, filepath.Join(dir, "small.db"), Options{applyEvery: -1, KVCacheBytes: 2000})
	whole := openWith(t, filepath.Join(dir, "whole.db"), Options{applyEvery: -1})
	plain := openWith(t, filepath.Join(dir, "plain.db"), Options{applyEvery: -1, KVCacheBytes: -1})
	stores := []*Store{small, whole, plain}
	rng := rand.New(rand.NewPCG(7, 11))
	key := func() string { return fmt.Sprintf("k%02d", rng.IntN(20)) }
	value := func() protocol.Value {
		v := protocol.Value{Data: []byte(strings.Repeat("v", rng.IntN(40))), Binary: rng.IntN(4) == 0}
		if len(v.Data) == 0 && rng.IntN(2) == 0 {
			v.Data = nil // as a decoder may leave an empty value
		}
		return v
	}
	randomTxn := func() *protocol.Txn {
		t := &protocol.Txn{}
		if rng.IntN(3) == 0 {
			t.Compares = []protocol.Compare{{Key: key(), Target: protocol.TargetVersion, Op: protocol.CmpOp(rng.IntN(3)), Version: int64(rng.IntN(3))}}
		}
		for range 1 + rng.IntN(4) {
			op := protocol.Op{Kind: protocol.OpKind(rng.IntN(3)), Key: key()}
			if op.Kind == protocol.OpPut {
				op.Value = value()
			}
			if rng.IntN(2) == 0 {
				t.Success = append(t.Success, op)
			} else {
				t.Failure = append(t.Failure, op)
			}
		}
		return t
	}
	epoch, most, full := 1, 0, 0
	for i := range 600 {
		txid := fmt.Sprintf("%d.%d", epoch, i+1)
		if i == 300 {
			// A catch-up reset: every store becomes the same copy.
			in := &protocol.Install{Reset: true, Fence: "2.0"}
			for j := range 10 {
				in.Writes = append(in.Writes, protocol.Write{Key: fmt.Sprintf("k%02d", j*2), Entry: protocol.Entry{Found: true, Value: value(), Version: int64(j + 1)}})
			}
			for _, s := range stores {
				if err := s.Install(ctx, in); err != nil {
					t.Fatal(err)
				}
			}
			epoch = 3
			continue
		}
		tx := randomTxn()
		abort := rng.IntN(5) == 0
		var votes []protocol.Vote
		for _, s := range stores {
			v, err := s.Prepare(ctx, txid, tx)
			if err != nil {
				t.Fatal(err)
			}
			votes = append(votes, v)
			decide := s.Commit
			if abort {
				decide = s.Abort
			}
			if err := decide(ctx, txid); err != nil {
				t.Fatal(err)
			}
		}
		for j, v := range votes[:2] {
			if !sameVote(v, votes[2]) {
				t.Fatalf("step %d, %+v: store %d voted %+v, the one without a cache %+v", i, tx, j, v, votes[2])
			}
		}
		cacheMatchesKV(t, small)
		cacheMatchesKV(t, whole)
		most = max(most, len(small.w.cache.m))
		if small.w.cache.bytes > 2000-200 {
			full++ // the next key read or written drops one
		}
	}
	for _, s := range stores[:2] {
		if d1, d2 := digest(t, s), digest(t, plain); d1 != d2 {
			t.Fatalf("digests differ: cached %+v, plain %+v", d1, d2)
		}
	}
	if most < 8 || full < 100 || small.w.cache.bytes > 2000 || small.w.cache.complete {
		t.Fatalf("the small cache held at most %d entries, was full at %d steps, charges %d bytes, complete %v: want it used, full, within its 2000, incomplete",
			most, full, small.w.cache.bytes, small.w.cache.complete)
	}
	if !whole.w.cache.complete {
		t.Fatal("a cache with room for all of kv is not complete")
	}
	if len(plain.w.cache.m) != 0 || plain.w.cache.complete {
		t.Fatalf("a cache that is off holds %d entries, complete %v", len(plain.w.cache.m), plain.w.cache.complete)
	}
}

// At open, the cache loads kv: all of it, and is complete, if it fits;
// else as much as fits, and queries SQLite for the rest.
func TestKVCacheLoadsAtOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s := openWith(t, path, Options{})
	for i := range 40 {
		commit(t, s, fmt.Sprintf("1.%d", i+1), put(fmt.Sprintf("k%02d", i), strings.Repeat("v", i)))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		bytes    int
		complete bool
	}{{0, true}, {3000, false}} {
		s := openWith(t, path, Options{KVCacheBytes: c.bytes})
		if n := len(s.w.cache.m); s.w.cache.complete != c.complete || n == 0 || !c.complete && n >= 40 || c.complete && n != 40 {
			t.Fatalf("cache of %d bytes: %d of 40 keys loaded, complete %v; want complete %v", c.bytes, n, s.w.cache.complete, c.complete)
		}
		cacheMatchesKV(t, s)
		v := mustVote(t, s, "2.1", txn(protocol.Op{Kind: protocol.OpGet, Key: "k39"}, protocol.Op{Kind: protocol.OpGet, Key: "k40"}), protocol.VoteReadOnly)
		if a, b := v.Results[0], v.Results[1]; !a.Found || a.Version != 1 || len(a.Value.Data) != 39 || b.Found {
			t.Fatalf("cache of %d bytes: read k39 %+v and the absent k40 %+v", c.bytes, a, b)
		}
		// k39, last in key order, is not among what a small cache loads.
		if st := s.Stats(); st.KVCacheHits+st.KVQueries != 2 || (st.KVQueries == 0) != c.complete {
			t.Fatalf("cache of %d bytes: %d reads from the cache, %d queries; want 2 reads, queries only if incomplete", c.bytes, st.KVCacheHits, st.KVQueries)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A write transaction that fails leaves no trace in the cache: kv did not
// change.
func TestKVCacheForgetsRolledBackWrites(t *testing.T) {
	s := openWith(t, filepath.Join(t.TempDir(), "p.db"), Options{applyEvery: -1})
	commit(t, s, "1.1", put("a", "old"))
	mustVote(t, s, "1.2", put("b", "x"), yes) // reads b into the cache
	s.mu.Lock()
	_, err := s.w.inTx(func(tx *wtx) error {
		if err := tx.applyWrite(protocol.Write{Key: "a", Entry: protocol.Entry{Found: true, Value: protocol.Value{Data: []byte("new")}, Version: 9}}); err != nil {
			return err
		}
		return errors.New("planted")
	}, nil)
	s.mu.Unlock()
	if err == nil {
		t.Fatal("the planted failure did not fail the transaction")
	}
	cacheMatchesKV(t, s)
	v := mustVote(t, s, "1.3", txn(protocol.Op{Kind: protocol.OpGet, Key: "a"}), protocol.VoteReadOnly)
	if got := v.Results[0]; string(got.Value.Data) != "old" || got.Version != 1 {
		t.Fatalf("after a rollback, a prepare read a = %q version %d, want old version 1", got.Value.Data, got.Version)
	}
}

func TestKVCacheBounds(t *testing.T) {
	c := newKVCache(10_000)
	for i := range 1000 {
		c.set(fmt.Sprintf("key%d", i), protocol.Entry{Found: true, Value: protocol.Value{Data: make([]byte, 20)}})
		if c.bytes > 10_000 {
			t.Fatalf("after %d entries the cache charges %d bytes, past its 10000", i+1, c.bytes)
		}
	}
	sum := 0
	for k, e := range c.m {
		sum += cost(k, e)
	}
	if sum != c.bytes || len(c.m) < 10_000/(20+8+kvEntryOverhead) {
		t.Fatalf("cache holds %d entries costing %d, charges %d", len(c.m), sum, c.bytes)
	}
	// Keys written again, larger and smaller: charged what they hold.
	for i := range 3000 {
		c.set(fmt.Sprintf("key%d", i%97), protocol.Entry{Found: true, Value: protocol.Value{Data: make([]byte, i*7%300)}})
		sum := 0
		for k, e := range c.m {
			sum += cost(k, e)
		}
		if sum != c.bytes || c.bytes > 10_000 {
			t.Fatalf("after rewrite %d the cache holds entries costing %d, charges %d (bound 10000)", i, sum, c.bytes)
		}
	}
	c.set("big", protocol.Entry{Found: true, Value: protocol.Value{Data: make([]byte, 1500)}})
	if _, ok := c.get("big"); ok {
		t.Fatal("a value of a sixth of the cache was cached")
	}
	off := newKVCache(-1)
	off.set("a", protocol.Entry{})
	if len(off.m) != 0 {
		t.Fatal("a cache that is off holds an entry")
	}
}
