package e2e

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twopc/twopc/internal/rpc"
)

// putLoad is clients putting unique keys through a coordinator, keeping
// what was acknowledged. A failure must be a fault that promises nothing
// was written (3 unavailable, 2 conflict) or a broken connection; the
// client backs off and goes on.
type putLoad struct {
	t        *testing.T
	mu       sync.Mutex
	acked    map[string]string // key -> value, for puts that returned true
	lastAck  time.Time
	longest  time.Duration // longest time between two acknowledgements
	n        atomic.Int64
	progress chan struct{}
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startPutLoad(t *testing.T, url string, clients int) *putLoad {
	return startPutLoadAt(t, []string{url}, clients, false)
}

// startPutLoadAt spreads the clients over urls. With unknownOK, fault 6
// (outcome unknown) is no error: a coordinator that stops leading, or
// fails to forward, answers it for a put that may or may not be done.
func startPutLoadAt(t *testing.T, urls []string, clients int, unknownOK bool) *putLoad {
	l := &putLoad{t: t, acked: map[string]string{}, progress: make(chan struct{}, 1), stop: make(chan struct{}), lastAck: time.Now()}
	for c := range clients {
		l.wg.Go(func() {
			client := rpc.NewClient(urls[c%len(urls)], nil)
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				key, value := fmt.Sprintf("c%d-%d", c, i), fmt.Sprintf("v%d-%d", c, i)
				ctx, cancel := ctxTimeout()
				_, err := client.Call(ctx, "put", key, value)
				cancel()
				if err != nil {
					var f *rpc.Fault
					if errors.As(err, &f) && f.Code != rpc.Unavailable && f.Code != rpc.Conflict && !(unknownOK && f.Code == rpc.OutcomeUnknown) {
						t.Errorf("put %s: unexpected fault %v", key, f)
					}
					time.Sleep(10 * time.Millisecond) // back off while the server restarts
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

// waitAcks blocks until k more puts have been acknowledged.
func (l *putLoad) waitAcks(k int64) {
	l.t.Helper()
	target := l.n.Load() + k
	for l.n.Load() < target {
		select {
		case <-l.progress:
		case <-time.After(30 * time.Second):
			l.t.Fatalf("no progress: %d acknowledged puts, waiting for %d", l.n.Load(), target)
		}
	}
}

// resetGap starts measuring the longest gap between acknowledgements
// afresh.
func (l *putLoad) resetGap() {
	l.mu.Lock()
	l.longest, l.lastAck = 0, time.Now()
	l.mu.Unlock()
}

func (l *putLoad) gap() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.longest
}

// end stops the clients and returns what was acknowledged.
func (l *putLoad) end() map[string]string {
	close(l.stop)
	l.wg.Wait()
	return l.acked
}
