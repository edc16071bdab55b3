package coordinator

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// keyLocks serialises transactions on the same key and nothing else: a
// write waits only for earlier writes to its own key, and since each
// transaction holds one key there is no lock order to get wrong (no
// deadlock). The table is sharded so that taking a lock never contends
// on one global mutex.
type keyLocks struct {
	seed   maphash.Seed
	shards [64]lockShard
}

type lockShard struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

// keyLock is a one-slot semaphore; waiters queue on the channel send.
type keyLock struct {
	slot    chan struct{}
	waiters int // holders + waiters; the entry is dropped at zero
}

func newKeyLocks() *keyLocks {
	l := &keyLocks{seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].m = map[string]*keyLock{}
	}
	return l
}

func (l *keyLocks) shard(key string) *lockShard {
	return &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
}

// lock takes key's lock, waiting at most timeout (and no longer than ctx).
// If it has to wait, it calls onWait first (nil: nothing). It returns the
// function that releases the lock, or false if it gave up.
func (l *keyLocks) lock(ctx context.Context, key string, timeout time.Duration, onWait func()) (unlock func(), ok bool) {
	sh := l.shard(key)
	sh.mu.Lock()
	kl := sh.m[key]
	if kl == nil {
		kl = &keyLock{slot: make(chan struct{}, 1)}
		sh.m[key] = kl
	}
	kl.waiters++
	sh.mu.Unlock()

	release := func() {
		sh.mu.Lock()
		kl.waiters--
		if kl.waiters == 0 {
			delete(sh.m, key)
		}
		sh.mu.Unlock()
	}
	select {
	case kl.slot <- struct{}{}:
		return func() { <-kl.slot; release() }, true
	default:
	}
	if onWait != nil {
		onWait()
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case kl.slot <- struct{}{}:
		return func() { <-kl.slot; release() }, true
	case <-timer.C:
	case <-ctx.Done():
	}
	release()
	return nil, false
}
