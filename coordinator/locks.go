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
	mu   sync.Mutex
	m    map[string]*keyLock
	free []*keyLock // dropped entries, for the next key: a transaction's 8 keys cost 40 allocations
}

// keyLock is a one-slot semaphore; waiters queue on the channel send.
type keyLock struct {
	slot    chan struct{}
	waiters int // holders + waiters; the entry is dropped at zero
}

// maxFreeLocks bounds a shard's free entries.
const maxFreeLocks = 64

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

// heldLock is a lock taken.
type heldLock struct {
	sh  *lockShard
	key string
	kl  *keyLock
}

func (h heldLock) unlock() {
	<-h.kl.slot
	h.sh.leave(h.key, h.kl)
}

// lockAll takes the locks of keys, which must be sorted without repeats,
// in that order, waiting at most timeout in all (and no longer than ctx).
// If it has to wait, it calls onWait first (nil: nothing). It returns the
// function that releases them all (once), or false if it gave up, holding
// none.
func (l *keyLocks) lockAll(ctx context.Context, keys []string, timeout time.Duration, onWait func()) (unlock func(), ok bool) {
	deadline := time.Now().Add(timeout)
	held := make([]heldLock, 0, len(keys))
	for _, k := range keys {
		h, ok := l.lock(ctx, k, deadline, onWait)
		if !ok {
			for _, h := range held {
				h.unlock()
			}
			return nil, false
		}
		held = append(held, h)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			for _, h := range held {
				h.unlock()
			}
		})
	}, true
}

// lock takes key's lock, waiting until deadline at most (and no longer
// than ctx). If it has to wait, it calls onWait first (nil: nothing). It
// returns false if it gave up.
func (l *keyLocks) lock(ctx context.Context, key string, deadline time.Time, onWait func()) (heldLock, bool) {
	sh := l.shard(key)
	sh.mu.Lock()
	kl := sh.m[key]
	if kl == nil {
		kl = sh.entry()
		sh.m[key] = kl
	}
	kl.waiters++
	sh.mu.Unlock()

	h := heldLock{sh: sh, key: key, kl: kl}
	select {
	case kl.slot <- struct{}{}:
		return h, true
	default:
	}
	if onWait != nil {
		onWait()
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case kl.slot <- struct{}{}:
		return h, true
	case <-timer.C:
	case <-ctx.Done():
	}
	sh.leave(key, kl)
	return heldLock{}, false
}

// entry is a free keyLock, or a new one. sh.mu is held.
func (sh *lockShard) entry() *keyLock {
	if n := len(sh.free); n > 0 {
		kl := sh.free[n-1]
		sh.free = sh.free[:n-1]
		return kl
	}
	return &keyLock{slot: make(chan struct{}, 1)}
}

// leave counts one holder or waiter of key's lock out, and drops the
// entry when none is left; its slot is empty then, so it can serve
// another key.
func (sh *lockShard) leave(key string, kl *keyLock) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	kl.waiters--
	if kl.waiters == 0 {
		delete(sh.m, key)
		if len(sh.free) < maxFreeLocks {
			sh.free = append(sh.free, kl)
		}
	}
}
