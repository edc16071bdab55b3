package web

import (
	"context"
	"sync"
	"time"

	"github.com/twopc/twopc/coordinator"
)

// SharedStatus returns status, called at most once per ttl: /readyz and
// /metrics are open to whoever reaches the port, and each Status asks
// every participant, so a client polling them in a loop must not become a
// loop of calls to the participants. Callers that come while a probe is
// running wait for it and share its answer.
func SharedStatus(status func(context.Context) coordinator.Status, ttl time.Duration) func(context.Context) coordinator.Status {
	s := &sharedStatus{status: status, ttl: ttl, now: time.Now}
	return s.get
}

type sharedStatus struct {
	status func(context.Context) coordinator.Status
	ttl    time.Duration
	now    func() time.Time

	mu   sync.Mutex // held during a probe
	at   time.Time  // of the last answer; zero: none yet
	last coordinator.Status
}

func (s *sharedStatus) get(ctx context.Context) coordinator.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.at.IsZero() && s.now().Sub(s.at) < s.ttl {
		return s.last
	}
	s.last = s.status(ctx)
	s.at = s.now()
	return s.last
}
