// Package putload is a test load shared by the end-to-end tests (e2e/,
// ops/deploy/): clients putting keys of their own through coordinators,
// each acknowledged put's key and value kept, to be looked for on every
// replica afterwards.
package putload

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twopc/twopc/internal/rpc"
)

// Load is the running clients.
type Load struct {
	t        testing.TB
	mu       sync.Mutex
	acked    map[string]string // key -> value, for puts that returned true
	lastAck  time.Time
	longest  time.Duration // longest time between two acknowledgements
	n        atomic.Int64
	progress chan struct{}
	stop     chan struct{}
	wg       sync.WaitGroup
}

// Start runs clients, client i calling through clientFor(i). A failed put
// must be a fault that promises nothing was written (3 unavailable, 2
// conflict), one of tolerate (6, outcome unknown, while a leader is
// killed), or a broken connection: the client backs off and goes on.
// Any other fault fails the test and stops that client.
func Start(t testing.TB, clients int, clientFor func(i int) *rpc.Client, tolerate ...int) *Load {
	l := &Load{t: t, acked: map[string]string{}, progress: make(chan struct{}, 1), stop: make(chan struct{}), lastAck: time.Now()}
	for c := range clients {
		client := clientFor(c)
		l.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				key, value := fmt.Sprintf("c%d-%d", c, i), fmt.Sprintf("v%d-%d", c, i)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := client.Call(ctx, "put", key, value)
				cancel()
				var f *rpc.Fault
				switch {
				case errors.As(err, &f) && f.Code != rpc.Unavailable && f.Code != rpc.Conflict && !slices.Contains(tolerate, f.Code):
					t.Errorf("put %s: unexpected fault %v", key, f)
					return
				case err != nil:
					time.Sleep(10 * time.Millisecond) // back off while a server restarts
					continue
				}
				l.mu.Lock()
				l.acked[key] = value
				now := time.Now()
				l.longest = max(l.longest, now.Sub(l.lastAck))
				l.lastAck = now
				l.mu.Unlock()
				l.n.Add(1)
				select {
				case l.progress <- struct{}{}:
				default:
				}
			}
		})
	}
	return l
}

// WaitAcks blocks until k more puts have been acknowledged; it fails the
// test if none comes for 2 minutes (a bound, not a timing: writes have
// stopped).
func (l *Load) WaitAcks(k int64) {
	l.t.Helper()
	target := l.n.Load() + k
	for l.n.Load() < target {
		select {
		case <-l.progress:
		case <-time.After(2 * time.Minute):
			l.t.Fatalf("no progress: %d acknowledged puts, waiting for %d", l.n.Load(), target)
		}
	}
}

// ResetGap starts measuring the longest gap between acknowledgements
// afresh.
func (l *Load) ResetGap() {
	l.mu.Lock()
	l.longest, l.lastAck = 0, time.Now()
	l.mu.Unlock()
}

// Gap is the longest time between two acknowledgements since the start
// or the last ResetGap.
func (l *Load) Gap() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.longest
}

// End stops the clients and returns what was acknowledged.
func (l *Load) End() map[string]string {
	close(l.stop)
	l.wg.Wait()
	return l.acked
}
