package coordinator

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// keyLocks serialises transactions on the same keys and nothing else: a
// transaction waits only for earlier ones that share a key with it. Every
// transaction takes its keys in one global order (sorted, lockAll), so
// two with overlapping keys never wait for each other in a cycle: no
// deadlock. The table is sharded so that taking a lock never contends on
// one global mutex.
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

// lockAll takes the locks of keys, which must be sorted without repeats,
// in that order, waiting at most timeout in all (and no longer than ctx).
// If it has to wait, it calls onWait first (nil: nothing). It returns the
// function that releases them all (once), or false if it gave up, holding
// none.
func (l *keyLocks) lockAll(ctx context.Context, keys []string, timeout time.Duration, onWait func()) (unlock func(), ok bool) {
	deadline := time.Now().Add(timeout)
	unlocks := make([]func(), 0, len(keys))
	release := func() {
		for _, u := range unlocks {
			u()
		}
	}
	for _, k := range keys {
		u, ok := l.lock(ctx, k, deadline, onWait)
		if !ok {
			release()
			return nil, false
		}
		unlocks = append(unlocks, u)
	}
	var once sync.Once
	return func() { once.Do(release) }, true
}

// lock takes key's lock, waiting until deadline at most (and no longer
// than ctx). If it has to wait, it calls onWait first (nil: nothing). It
// returns the function that releases the lock, or false if it gave up.
func (l *keyLocks) lock(ctx context.Context, key string, deadline time.Time, onWait func()) (unlock func(), ok bool) {
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
	timer := time.NewTimer(time.Until(deadline))
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
