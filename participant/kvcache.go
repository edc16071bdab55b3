package participant

import (
	"sync/atomic"

	"github.com/twopc/twopc/protocol"
)

// kvCache holds the committed entries of the keys the writer read from or
// wrote to kv lately, so that a prepare finds a key's entry without a
// SQLite query. A query costs about 5 µs here (cgo, binding, a B-tree
// descent), and a transaction runs one per key it touches: a fifth of an
// 8-put transaction's CPU in a participant, measured before this cache.
//
// The cache mirrors kv exactly, by construction: the writer is kv's only
// writer, and every change it makes to kv (applyWrite, a catch-up reset)
// goes through the cache too. A write transaction that rolls back empties
// the cache, since kv did not change the way the cache did. It is bounded
// by bytes; when full, it drops entries in map order, which is roughly
// random: no bookkeeping per hit, and a hot key that is dropped comes
// back on its next read.
//
// While all of kv fits, the cache holds all of it (complete), loaded at
// open: then a key it does not hold is a key kv does not hold, and even
// the first write of a new key queries nothing. It stops being complete
// the first time it drops an entry to make room, or rolls back.
type kvCache struct {
	m        map[string]protocol.Entry // not found: a key known to be absent
	bytes    int
	maxBytes int  // 0: off
	complete bool // every key of kv is in m

	// Reads the cache answered, and those that queried SQLite (Stats).
	hits, queries atomic.Uint64
}

// kvEntryOverhead is what the cache charges for an entry beyond its key
// and value: the map's slot (64 bytes: the Entry and the key's header),
// with the slack of a map that has just doubled, and the allocations'
// rounding. 100,000 entries of an 8-byte key and a 64-byte value took
// 174 bytes each of Go heap, measured.
const kvEntryOverhead = 128

// DefaultKVCacheBytes is the memory the kv cache may charge by default:
// about 130,000 entries of an 8-byte key and a 64-byte value. The
// benchmarks' 100,000 keys fit, so that their participants never query kv.
const DefaultKVCacheBytes = 24 << 20

func newKVCache(maxBytes int) *kvCache {
	return &kvCache{m: map[string]protocol.Entry{}, maxBytes: max(maxBytes, 0)}
}

func cost(key string, e protocol.Entry) int {
	return len(key) + len(e.Value.Data) + kvEntryOverhead
}

// get returns key's entry in kv, if the cache knows it.
func (c *kvCache) get(key string) (protocol.Entry, bool) {
	e, ok := c.m[key]
	return e, ok || c.complete
}

// fits says whether key's entry e can join the cache without dropping
// another.
func (c *kvCache) fits(key string, e protocol.Entry) bool {
	return c.bytes+cost(key, e) <= c.maxBytes
}

// set records that key's entry in kv is e (not found: the key is absent).
func (c *kvCache) set(key string, e protocol.Entry) {
	if c.maxBytes == 0 {
		return
	}
	n := cost(key, e)
	if old, ok := c.m[key]; ok && (e.Found || !c.complete) && n <= c.maxBytes/8 && c.bytes-cost(key, old)+n <= c.maxBytes {
		// The usual write of a cached key, in place: a delete and an
		// insert cost two more probes of a map too big for the CPU's
		// caches (the delete's was 3% of a participant's CPU on puts).
		c.bytes += n - cost(key, old)
		c.m[key] = e
		return
	}
	c.drop(key)
	if !e.Found && c.complete {
		return // absent keys are the ones not held
	}
	if n > c.maxBytes/8 {
		c.complete = false // a large value would push out many small ones
		return
	}
	for c.bytes+n > c.maxBytes {
		c.complete = false
		for k := range c.m {
			c.drop(k)
			break
		}
	}
	c.m[key] = e
	c.bytes += n
}

func (c *kvCache) drop(key string) {
	if old, ok := c.m[key]; ok {
		c.bytes -= cost(key, old)
		delete(c.m, key)
	}
}

// emptied records that kv is now empty.
func (c *kvCache) emptied() {
	c.reset()
	c.complete = c.maxBytes > 0
}

// reset forgets everything: the cache no longer knows kv.
func (c *kvCache) reset() {
	clear(c.m)
	c.bytes = 0
	c.complete = false
}
