package web

import (
	"sync"
	"time"
)

// rateMeter turns readings of counters into rates per second over about
// the last minute, from the readings of successive page views.
type rateMeter struct {
	mu      sync.Mutex
	window  time.Duration
	samples []reading
}

type reading struct {
	at time.Time
	v  []uint64
}

// add records a reading of the counters v at at, and returns each one's
// rate since the oldest reading in the window, or nil if there is no
// earlier reading (the first view) or a counter went down (a restart).
func (m *rateMeter) add(at time.Time, v ...uint64) []float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	// Keep one reading older than the window, so that the rate spans it.
	for len(m.samples) > 1 && at.Sub(m.samples[1].at) >= m.window {
		m.samples = m.samples[1:]
	}
	m.samples = append(m.samples, reading{at, v})
	first := m.samples[0]
	dt := at.Sub(first.at).Seconds()
	if dt <= 0 || len(first.v) != len(v) {
		return nil
	}
	rates := make([]float64, len(v))
	for i := range v {
		if v[i] < first.v[i] {
			m.samples = m.samples[len(m.samples)-1:]
			return nil
		}
		rates[i] = float64(v[i]-first.v[i]) / dt
	}
	return rates
}
