package web

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twopc/twopc/coordinator"
	"github.com/twopc/twopc/txlog"
)

// PageConfig is what the status page shows.
type PageConfig struct {
	// Status and Pending read the coordinator (Status through
	// SharedStatus, preferably; Pending is Coordinator.Pending).
	Status  func(context.Context) coordinator.Status
	Pending func(context.Context) []coordinator.PendingTx
	Started time.Time        // the process's start, for its uptime
	Version string           // of the binary
	Refresh time.Duration    // between reloads; default 2s
	Now     func() time.Time // default time.Now
}

//go:embed page.html
var pageHTML string

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"age":   ageText,
	"bytes": bytesText,
	"keys":  keysText,
	"rate":  rateText,
}).Parse(pageHTML))

// NewPage returns the coordinator's status page: plain HTML rendered on
// the server at each view, reloaded by the browser (meta refresh), with
// no script.
func NewPage(cfg PageConfig) http.Handler {
	if cfg.Refresh <= 0 {
		cfg.Refresh = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &page{cfg: cfg, rates: &rateMeter{window: time.Minute}}
}

type page struct {
	cfg   PageConfig
	rates *rateMeter
}

// pageData is what the template renders.
type pageData struct {
	Now          string
	Refresh      int
	Version      string
	Epoch        uint64
	Uptime       string
	Why          []string // not ready because; empty: ready
	Participants []coordinator.ParticipantStatus
	Counters     []counter
	Log          *txlog.Stats // nil: not kept
	Pending      []coordinator.PendingTx
}

type counter struct {
	Name  string
	Value any
	Rated bool     // a rate makes sense: it counts events
	Rate  *float64 // per second over the last minute; nil: not known yet
	Help  string
}

func (p *page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	d := p.gather(ctx)
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, d); err != nil {
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// The page is self-contained: no script, no style or image from
	// anywhere, and no other site may frame it.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(buf.Bytes())
}

// gather reads the coordinator, which asks every participant what it
// holds prepared, at once.
func (p *page) gather(ctx context.Context) pageData {
	var (
		st      coordinator.Status
		pending []coordinator.PendingTx
		wg      sync.WaitGroup
	)
	wg.Go(func() { st = p.cfg.Status(ctx) })
	wg.Go(func() { pending = p.cfg.Pending(ctx) })
	wg.Wait()
	now := p.cfg.Now()

	d := pageData{
		Now: now.UTC().Format(time.RFC3339), Refresh: max(1, int(p.cfg.Refresh/time.Second)),
		Version: p.cfg.Version, Epoch: st.Epoch, Uptime: ageText(now.Sub(p.cfg.Started)),
		Why: notReady(st), Participants: st.Participants, Log: st.Log,
		Pending: pending,
	}
	rates := p.rates.add(now, st.Committed, st.Aborted)
	rate := func(i int) *float64 {
		if rates == nil {
			return nil
		}
		return &rates[i]
	}
	d.Counters = []counter{
		{"committed", st.Committed, true, rate(0), "finished: every participant applied it"},
		{"aborted", st.Aborted, true, rate(1), "nothing written"},
		{"in doubt", st.InDoubt, false, nil, "now: committed, not yet acknowledged by every participant"},
		{"active", st.Active, false, nil, "now: being prepared"},
		{"read cache hits", st.CacheHits, false, nil, "gets served without a participant"},
		{"read cache misses", st.CacheMisses, false, nil, "gets that asked a participant"},
	}
	return d
}

func ageText(d time.Duration) string {
	switch {
	case d <= 0:
		return "unknown"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

func bytesText(n int64) string {
	switch {
	case n < 1<<10:
		return strconv.FormatInt(n, 10) + " B"
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}

// keysText shows keys (any bytes) quoted and cut short, the first few.
func keysText(keys []string) string {
	const most, limit = 4, 48
	var b strings.Builder
	for i, k := range keys {
		if i == most {
			fmt.Fprintf(&b, " and %d more", len(keys)-most)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		if len(k) > limit {
			b.WriteString(strconv.QuoteToGraphic(k[:limit]) + "…")
		} else {
			b.WriteString(strconv.QuoteToGraphic(k))
		}
	}
	return b.String()
}

func rateText(r *float64) string {
	if r == nil {
		return "—"
	}
	return fmt.Sprintf("%.1f/s", *r)
}
