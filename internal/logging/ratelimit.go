package logging

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// A request can make a server log a line (a refused request, say), so a
// client that repeats a bad request could otherwise fill the disk:
// RateLimit passes the first lines of each kind and counts the rest.

// maxMessage bounds a line's message: net/http logs whole lines that may
// quote what a client sent.
const maxMessage = 1024

// maxKinds bounds the memory of the counts: past it, kinds whose window
// has ended are forgotten, and if none has, the lines of new kinds are
// dropped until one does.
const maxKinds = 1024

// RateLimit returns a handler that passes to next at most burst records
// of each kind per window and drops the others. The first record of a
// kind after a window in which some were dropped carries
// dropped=N, so nothing disappears silently.
//
// A record's kind is its level and its message without digits: the
// servers' own messages are constants, and net/http's (which come as
// whole lines) differ between repeats mostly by the addresses and ports
// they name.
func RateLimit(next slog.Handler, window time.Duration, burst int) slog.Handler {
	return &limiter{next: next, state: &state{window: window, burst: burst, now: time.Now, kinds: map[string]*kind{}}}
}

type limiter struct {
	next  slog.Handler
	state *state // shared by the handlers WithAttrs and WithGroup derive
}

type state struct {
	window time.Duration
	burst  int
	now    func() time.Time

	mu    sync.Mutex
	kinds map[string]*kind
}

type kind struct {
	start   time.Time // of the current window
	passed  int       // records passed in it
	dropped int       // records dropped since the last one passed
}

func (l *limiter) Enabled(ctx context.Context, level slog.Level) bool {
	return l.next.Enabled(ctx, level)
}

func (l *limiter) Handle(ctx context.Context, r slog.Record) error {
	dropped, pass := l.state.admit(kindOf(r))
	if !pass {
		return nil
	}
	if dropped > 0 || len(r.Message) > maxMessage {
		// A new record: the caller's must not change, and a cut
		// message cannot be set on a copy.
		c := slog.NewRecord(r.Time, r.Level, cut(r.Message), r.PC)
		r.Attrs(func(a slog.Attr) bool { c.AddAttrs(a); return true })
		if dropped > 0 {
			c.AddAttrs(slog.Int("dropped", dropped))
		}
		r = c
	}
	return l.next.Handle(ctx, r)
}

func (l *limiter) WithAttrs(as []slog.Attr) slog.Handler {
	return &limiter{next: l.next.WithAttrs(as), state: l.state}
}

func (l *limiter) WithGroup(name string) slog.Handler {
	return &limiter{next: l.next.WithGroup(name), state: l.state}
}

// admit counts one record of kind k and says whether it passes, and how
// many of its kind were dropped before it.
func (s *state) admit(k string) (dropped int, pass bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	c := s.kinds[k]
	if c == nil {
		if len(s.kinds) >= maxKinds && !s.forgetEnded(now) {
			return 0, false
		}
		c = &kind{start: now}
		s.kinds[k] = c
	}
	if now.Sub(c.start) >= s.window {
		c.start, c.passed = now, 0
	}
	if c.passed >= s.burst {
		c.dropped++
		return 0, false
	}
	c.passed++
	dropped, c.dropped = c.dropped, 0
	return dropped, true
}

// forgetEnded forgets the kinds whose window has ended and nothing
// dropped since, and reports whether that made room.
func (s *state) forgetEnded(now time.Time) bool {
	for k, c := range s.kinds {
		if now.Sub(c.start) >= s.window && c.dropped == 0 {
			delete(s.kinds, k)
		}
	}
	return len(s.kinds) < maxKinds
}

func cut(msg string) string {
	if len(msg) <= maxMessage {
		return msg
	}
	return strings.ToValidUTF8(msg[:maxMessage], "") + "..."
}

func kindOf(r slog.Record) string {
	msg := r.Message
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return r.Level.String() + " " + strings.Map(func(c rune) rune {
		if c >= '0' && c <= '9' {
			return -1
		}
		return c
	}, msg)
}
