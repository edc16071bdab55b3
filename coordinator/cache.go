package coordinator

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/twopc/twopc/protocol"
)

// valueCache remembers the values of recently committed writes so that a
// get of them needs no participant. Invariant: an entry holds the value
// of the latest committed write on its key (or that it was deleted). It
// holds because every write goes through this coordinator under its key
// lock, an entry is set only once the write is committed (every vote and
// its STAGED record durable: recovery would commit it too), and the cache
// starts empty at every start (recovered transactions carry no values). Entries may be dropped at any time: a miss
// reads a participant, which is always correct.
type valueCache struct {
	seed   maphash.Seed
	shards [64]cacheShard
	budget int64 // bytes per shard
}

type cacheShard struct {
	mu    sync.Mutex
	m     map[string]*cached // by pointer, so that a rewrite finds and updates in one probe
	bytes int64
}

type cached struct {
	value protocol.Value
	found bool // false: the latest write was a delete
}

// cacheEntryOverhead approximates a map entry's own size.
const cacheEntryOverhead = 64

func newValueCache(budget int64) *valueCache {
	if budget <= 0 {
		return nil
	}
	c := &valueCache{seed: maphash.MakeSeed(), budget: budget / 64}
	for i := range c.shards {
		c.shards[i].m = map[string]*cached{}
	}
	return c
}

func (c *valueCache) shard(key string) *cacheShard {
	return &c.shards[maphash.String(c.seed, key)%uint64(len(c.shards))]
}

func size(key string, e cached) int64 {
	return int64(len(key)+len(e.value.Data)) + cacheEntryOverhead
}

// setAll records the writes of t's branch that ran (success if
// succeeded), committed; the caller holds t's keys.
func (c *valueCache) setAll(t *protocol.Txn, succeeded bool) {
	if c == nil {
		return
	}
	ops := t.Success
	if !succeeded {
		ops = t.Failure
	}
	for _, o := range ops {
		switch o.Kind {
		case protocol.OpPut:
			c.set(o.Key, cached{value: o.Value, found: true})
		case protocol.OpDelete:
			c.set(o.Key, cached{})
		}
	}
}

// set records e as key's latest committed entry.
func (c *valueCache) set(key string, e cached) {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if p, ok := sh.m[key]; ok {
		sh.bytes += size(key, e) - size(key, *p)
		*p = e
	} else {
		p = new(cached)
		*p = e
		sh.m[key] = p
		sh.bytes += size(key, e)
	}
	if sh.bytes <= c.budget {
		return // not even an iterator: starting one on a large map costs as much as the rest
	}
	for k, old := range sh.m { // map order is random enough for eviction
		if sh.bytes <= c.budget {
			break
		}
		if k != key {
			delete(sh.m, k)
			sh.bytes -= size(k, *old)
		}
	}
}

// forgetAll drops keys: their latest writes are no longer known here.
func (c *valueCache) forgetAll(keys []string) {
	for _, k := range keys {
		c.forget(k)
	}
}

// forget drops key: its latest write is no longer known here.
func (c *valueCache) forget(key string) {
	if c == nil {
		return
	}
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old, ok := sh.m[key]; ok {
		delete(sh.m, key)
		sh.bytes -= size(key, *old)
	}
}

func (c *valueCache) get(key string) (cached, bool) {
	if c == nil {
		return cached{}, false
	}
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if p, ok := sh.m[key]; ok {
		return *p, true
	}
	return cached{}, false
}

// cacheStats counts cache hits and misses for status.
type cacheStats struct{ hits, misses atomic.Uint64 }
