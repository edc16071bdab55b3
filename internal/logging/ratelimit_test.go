package logging

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A bad request repeated a thousand times, from as many ports, leaves a
// handful of lines and then one that counts the rest; other kinds of
// lines are not held back by it.
func TestRateLimit(t *testing.T) {
	var out bytes.Buffer
	h := RateLimit(slog.NewTextHandler(&out, nil), 10*time.Second, 3).(*limiter)
	now := time.Unix(1000, 0)
	h.state.now = func() time.Time { return now }
	log := slog.New(h).With("role", "coordinator")
	for i := range 1000 {
		log.Info("http: TLS handshake error from 127.0.0.1:" + string(rune('0'+i%10)) + "000: EOF")
	}
	log.Warn("participant excluded", "name", "p2")
	if got := strings.Count(out.String(), "TLS handshake"); got != 3 {
		t.Fatalf("%d lines of one kind passed in one window, want 3:\n%s", got, out.String())
	}
	if !strings.Contains(out.String(), "participant excluded") {
		t.Fatalf("a line of another kind was held back:\n%s", out.String())
	}
	now = now.Add(10 * time.Second)
	out.Reset()
	log.Info("http: TLS handshake error from 127.0.0.1:9999: EOF")
	if !strings.Contains(out.String(), "dropped=997") || !strings.Contains(out.String(), "role=coordinator") {
		t.Fatalf("first line of the next window: %q, want dropped=997 and the logger's attributes", out.String())
	}
}

// A message longer than maxMessage is cut.
func TestRateLimitCutsLongMessages(t *testing.T) {
	var out bytes.Buffer
	slog.New(RateLimit(slog.NewTextHandler(&out, nil), time.Second, 1)).Info(strings.Repeat("A", 1<<20))
	if out.Len() > 2*maxMessage {
		t.Fatalf("a 1 MiB message made a %d-byte line", out.Len())
	}
}

// The memory of the counts is bounded: new kinds past maxKinds are
// dropped while every known kind's window is open.
func TestRateLimitBoundsKinds(t *testing.T) {
	h := RateLimit(slog.DiscardHandler, time.Minute, 1).(*limiter)
	for i := range 3 * maxKinds {
		h.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelInfo, strings.Repeat("x", i%300)+string(rune('a'+i%26))+strings.Repeat("y", i/300), 0))
	}
	if n := len(h.state.kinds); n > maxKinds {
		t.Fatalf("%d kinds remembered, want at most %d", n, maxKinds)
	}
}
