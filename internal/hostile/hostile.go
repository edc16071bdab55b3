// Package hostile holds the attacks of issue 13 as an attacker would send
// them: raw HTTP requests, no token, built to make a server spend memory,
// disk or time. The e2e tests run each against real processes and check
// that it gets its fault while memory stays bounded; `twopc bench
// --attack` runs them under load, for bench/hostile.sh's figures.
//
// An attack only sends and counts: what the server answered (faults by
// code, including the entries of a multicall reply), connections that
// failed, and the largest reply. Judging the answers is the caller's job.
package hostile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/twopc/twopc/internal/rpc"
)

// Target is where attacks are sent.
type Target struct {
	Coordinator string // URL of the coordinator's XML-RPC endpoint
	Participant string // URL of one participant's
}

// Attack is one way to try to exhaust a server.
type Attack struct {
	Name    string
	About   string
	Workers int // concurrent attackers, as the issue ran it
	setup   func(ctx context.Context, t Target) error
	request func(round int, t Target) (url string, body []byte)
}

// Report counts what the server answered to an attack.
type Report struct {
	Requests      int
	Faults        map[int]int // fault code -> times: whole replies and multicall entries
	Results       int         // replies and multicall entries that were not faults
	Large         int         // replies too big to decode cheaply: only their fault entries are counted, as FaultsInLarge
	FaultsInLarge int
	Transport     int         // requests that got no HTTP answer (connection closed or reset)
	HTTPStatus    map[int]int // answers other than 200
	MaxReply      int64       // bytes of the largest reply body
	Messages      []string    // a few fault messages, for people
}

func (r Report) String() string {
	codes := make([]int, 0, len(r.Faults))
	for c := range r.Faults {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var b strings.Builder
	fmt.Fprintf(&b, "requests=%d results=%d faults={", r.Requests, r.Results)
	for i, c := range codes {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%d:%d", c, r.Faults[c])
	}
	fmt.Fprintf(&b, "} large_replies=%d (fault entries in them: %d) transport=%d max_reply=%dB", r.Large, r.FaultsInLarge, r.Transport, r.MaxReply)
	for st, n := range r.HTTPStatus {
		fmt.Fprintf(&b, " http%d=%d", st, n)
	}
	return b.String()
}

// maxDecoded is the largest reply an attacker decodes. A larger one (what
// the multicall attack gets) is only scanned for fault entries: decoding
// megabytes of values would make the attacker, who shares the machine,
// take CPU from the load it is measured against.
const maxDecoded = 1 << 20

// Run sends the attack from workers goroutines (0: a.Workers) until ctx
// ends, and returns what came back.
func Run(ctx context.Context, a Attack, t Target, workers int) (Report, error) {
	return Repeat(ctx, a, t, workers, 0)
}

// Repeat is Run that stops after rounds requests (0: none, until ctx ends).
func Repeat(ctx context.Context, a Attack, t Target, workers, rounds int) (Report, error) {
	if workers <= 0 {
		workers = a.Workers
	}
	if a.setup != nil {
		if err := a.setup(ctx, t); err != nil {
			return Report{}, fmt.Errorf("%s: setup: %w", a.Name, err)
		}
	}
	var (
		mu    sync.Mutex
		total = Report{Faults: map[int]int{}, HTTPStatus: map[int]int{}}
		wg    sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			// One connection per worker, as separate attackers would have.
			hc := &http.Client{Transport: &http.Transport{}}
			defer hc.CloseIdleConnections()
			for round := w; ctx.Err() == nil && (rounds == 0 || round < rounds); round += workers {
				url, body := a.request(round, t)
				r := send(ctx, hc, url, body)
				if ctx.Err() != nil && r.Transport > 0 {
					break // cut off by the end of the run, not by the server
				}
				mu.Lock()
				total.add(r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return total, nil
}

func (r *Report) add(o Report) {
	r.Requests += o.Requests
	r.Results += o.Results
	r.Large += o.Large
	r.FaultsInLarge += o.FaultsInLarge
	r.Transport += o.Transport
	r.MaxReply = max(r.MaxReply, o.MaxReply)
	for c, n := range o.Faults {
		r.Faults[c] += n
	}
	for c, n := range o.HTTPStatus {
		r.HTTPStatus[c] += n
	}
	if len(r.Messages) < 8 {
		r.Messages = append(r.Messages, o.Messages...)
	}
}

// send posts body and reads the answer, never holding more than
// maxDecoded bytes of it.
func send(ctx context.Context, hc *http.Client, url string, body []byte) Report {
	r := Report{Requests: 1, Faults: map[int]int{}, HTTPStatus: map[int]int{}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		panic(err) // the URL is the caller's: a bad one is a bug
	}
	req.Header.Set("Content-Type", "text/xml")
	resp, err := hc.Do(req)
	if err != nil {
		r.Transport++
		return r
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		r.HTTPStatus[resp.StatusCode]++
		io.Copy(io.Discard, resp.Body)
		return r
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, maxDecoded+1))
	r.MaxReply = int64(len(head))
	if err != nil {
		r.Transport++
		return r
	}
	if len(head) > maxDecoded {
		r.Large++
		r.FaultsInLarge += countFaults(head, resp.Body, &r.MaxReply)
		return r
	}
	v, err := rpc.DecodeResponse(bytes.NewReader(head), rpc.Limits{MaxBodyBytes: maxDecoded})
	var f *rpc.Fault
	switch {
	case errors.As(err, &f):
		r.fault(f.Code, f.Message)
	case err != nil:
		r.Transport++ // a broken answer: count it with the failures to answer
	default:
		r.results(v)
	}
	return r
}

// faultMember starts every fault entry our servers write.
var faultMember = []byte("<name>faultCode</name>")

// countFaults counts the fault entries of a reply that begins with head
// and goes on in rest, adding its length to size, a piece at a time.
func countFaults(head []byte, rest io.Reader, size *int64) int {
	n := bytes.Count(head, faultMember)
	carry := head[max(0, len(head)-len(faultMember)+1):]
	buf := make([]byte, 256<<10)
	for {
		k, err := rest.Read(buf[len(carry):])
		copy(buf, carry) // a member cut between two reads is counted once
		*size += int64(k)
		chunk := buf[:len(carry)+k]
		n += bytes.Count(chunk, faultMember)
		carry = append([]byte(nil), chunk[max(0, len(chunk)-len(faultMember)+1):]...)
		if err != nil {
			return n
		}
	}
}

func (r *Report) fault(code int, msg string) {
	r.Faults[code]++
	if len(r.Messages) < 8 {
		r.Messages = append(r.Messages, fmt.Sprintf("fault %d: %.200s", code, msg))
	}
}

// results counts a reply's value: a multicall's entries one by one.
func (r *Report) results(v any) {
	entries, ok := v.([]any)
	if !ok {
		r.Results++
		return
	}
	for _, e := range entries {
		if m, ok := e.(map[string]any); ok {
			code, _ := m["faultCode"].(int64)
			msg, _ := m["faultString"].(string)
			r.fault(int(code), msg)
			continue
		}
		r.Results++
	}
}
