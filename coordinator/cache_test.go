package coordinator

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twopc/twopc/protocol"
)

// Gets of keys this coordinator wrote come from its cache and see the
// latest write, deletes included; with a cache too small for everything,
// evicted keys are read from participants and are just as current.
func TestValueCache(t *testing.T) {
	cl := newCluster(t)
	cl.mustPut("k", "v1")
	cl.mustPut("k", "v2")
	hits := cl.c.cstats.hits.Load()
	if v, err := cl.c.Get(bg, "k"); err != nil || string(v.Data) != "v2" {
		t.Fatalf("get: %q %v", v.Data, err)
	}
	if got := cl.c.cstats.hits.Load() - hits; got != 1 {
		t.Fatalf("cache hits %d, want 1", got)
	}
	if _, err := cl.c.Delete(bg, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.c.Get(bg, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}

	// A restarted coordinator knows no values: it reads participants.
	cl.settle()
	cl.restart()
	misses := cl.c.cstats.misses.Load()
	if _, err := cl.c.Get(bg, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after restart: %v", err)
	}
	if cl.c.cstats.misses.Load() != misses+1 {
		t.Fatal("a restarted coordinator answered from a cache it cannot have")
	}

	// Tiny cache: most keys evicted, every get still current.
	cl.stop()
	cl.cacheBytes = 64 * 300 // about 4 entries per shard, 64 shards
	cl.start(-1)
	const n = 2000
	for i := range n {
		cl.mustPut(fmt.Sprint("key", i), fmt.Sprint("value", i))
	}
	for i := range n {
		v, err := cl.c.Get(bg, fmt.Sprint("key", i))
		if err != nil || string(v.Data) != fmt.Sprint("value", i) {
			t.Fatalf("key%d: %q %v", i, v.Data, err)
		}
	}
	if cl.c.cstats.misses.Load() == misses+1 {
		t.Fatal("nothing was evicted: the test did not exercise misses")
	}
	var total int64
	for i := range cl.c.cache.shards {
		total += cl.c.cache.shards[i].bytes
	}
	if total > cl.cacheBytes {
		t.Fatalf("cache holds %d bytes, budget %d", total, cl.cacheBytes)
	}
}

// BenchmarkCacheSet sets random keys of 100,000 in a cache that holds
// them all, as the benchmarks' puts do:
//
//	go test -run - -bench CacheSet ./coordinator
func BenchmarkCacheSet(b *testing.B) {
	c := newValueCache(64 << 20)
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%07d", i)
		c.set(keys[i], cached{value: protocol.Value{Data: make([]byte, 64)}, found: true})
	}
	v := cached{value: protocol.Value{Data: make([]byte, 64)}, found: true}
	b.ResetTimer()
	for i := range b.N {
		c.set(keys[(i*7919)%len(keys)], v)
	}
}
