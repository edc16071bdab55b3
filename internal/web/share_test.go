package web

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twopc/twopc/coordinator"
)

func TestSharedStatus(t *testing.T) {
	var (
		mu     sync.Mutex
		probes uint64
	)
	clock := time.Unix(1000, 0)
	s := &sharedStatus{ttl: time.Second, now: func() time.Time { return clock }, status: func(context.Context) coordinator.Status {
		mu.Lock()
		defer mu.Unlock()
		probes++
		return coordinator.Status{Committed: probes}
	}}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if st := s.get(t.Context()); st.Committed != 1 {
				t.Errorf("got the answer of probe %d, want the first", st.Committed)
			}
		})
	}
	wg.Wait()
	if probes != 1 {
		t.Fatalf("20 callers within the ttl made %d probes, want 1", probes)
	}
	clock = clock.Add(time.Second)
	if st := s.get(t.Context()); st.Committed != 2 || probes != 2 {
		t.Errorf("after the ttl: answer of probe %d, %d probes; want a new probe", st.Committed, probes)
	}
}
