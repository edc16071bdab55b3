package drill

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Kind is what an operation does.
type Kind string

const (
	Get    Kind = "get"
	Put    Kind = "put"
	Delete Kind = "delete"
)

// Outcome is what the caller learnt about an operation.
type Outcome string

const (
	// OK: the call returned a result; the operation took effect once,
	// somewhere between Call and Return.
	OK Outcome = "ok"
	// Failed: the call definitely had no effect (fault 2 conflict, fault 3
	// unavailable, or the connection was refused before anything was
	// sent).
	Failed Outcome = "failed"
	// Unknown: the call died in flight (connection reset, timeout, an
	// undocumented fault): it may have taken effect, at any time after
	// Call, even after the caller gave up.
	Unknown Outcome = "unknown"
)

// Op is one operation as a client saw it. Times are nanoseconds since the
// drill started, on the monotonic clock.
type Op struct {
	Client  int     `json:"client"` // a client that lost a call in flight continues under a new number
	Kind    Kind    `json:"kind"`
	Key     string  `json:"key"`
	Value   string  `json:"value,omitempty"`   // put: written; get: read (when Found)
	Found   bool    `json:"found,omitempty"`   // get: the key had a value
	Existed bool    `json:"existed,omitempty"` // delete: the key had a value
	Outcome Outcome `json:"outcome"`
	Call    int64   `json:"call"`
	Return  int64   `json:"return"` // when the caller stopped waiting, also for Unknown
	Err     string  `json:"err,omitempty"`
	// Replica is set on the final reads the drill makes directly at each
	// participant once the cluster has settled.
	Replica string `json:"replica,omitempty"`
}

func (o Op) String() string {
	in := fmt.Sprintf("%s(%q)", o.Kind, o.Key)
	if o.Kind == Put {
		in = fmt.Sprintf("put(%q, %q)", o.Key, o.Value)
	}
	if o.Replica != "" {
		in += "@" + o.Replica
	}
	switch {
	case o.Outcome != OK:
		return fmt.Sprintf("%s -> %s (%s)", in, o.Outcome, o.Err)
	case o.Kind == Get && o.Found:
		return fmt.Sprintf("%s -> %q", in, o.Value)
	case o.Kind == Get:
		return in + " -> not found"
	case o.Kind == Delete:
		return fmt.Sprintf("%s -> %v", in, o.Existed)
	}
	return in + " -> ok"
}

// Event is something the drill did to the cluster, kept beside the
// history so that a violation can be read against the faults.
type Event struct {
	Start int64  `json:"start"` // ns since the drill started
	End   int64  `json:"end"`
	What  string `json:"what"` // e.g. "kill coordinator (down 300ms)", "pause p2 for 1.5s"
}

// History is everything a drill observed.
type History struct {
	Ops    []Op    `json:"ops"`
	Events []Event `json:"events"`
}

// recorder collects a history from concurrent clients.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	h     History
}

func newRecorder() *recorder { return &recorder{start: time.Now()} }

// now is the drill clock: time.Since uses the monotonic reading, so wall
// clock jumps cannot reorder operations.
func (r *recorder) now() int64 { return int64(time.Since(r.start)) }

func (r *recorder) op(o Op) {
	r.mu.Lock()
	r.h.Ops = append(r.h.Ops, o)
	r.mu.Unlock()
}

func (r *recorder) event(e Event) {
	r.mu.Lock()
	r.h.Events = append(r.h.Events, e)
	r.mu.Unlock()
}

func (r *recorder) history() History {
	r.mu.Lock()
	defer r.mu.Unlock()
	return History{Ops: append([]Op(nil), r.h.Ops...), Events: append([]Event(nil), r.h.Events...)}
}

// WriteHistory writes h as JSON lines: one {"op":...} or {"event":...} per
// line, so that it can be grepped and read back with ReadHistory.
func WriteHistory(path string, h History) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, o := range h.Ops {
		enc.Encode(struct {
			Op Op `json:"op"`
		}{o})
	}
	for _, e := range h.Events {
		enc.Encode(struct {
			Event Event `json:"event"`
		}{e})
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadHistory reads a file written by WriteHistory.
func ReadHistory(path string) (History, error) {
	f, err := os.Open(path)
	if err != nil {
		return History{}, err
	}
	defer f.Close()
	var h History
	dec := json.NewDecoder(f)
	for line := 1; ; line++ {
		var rec struct {
			Op    *Op    `json:"op"`
			Event *Event `json:"event"`
		}
		if err := dec.Decode(&rec); err == io.EOF {
			return h, nil
		} else if err != nil {
			return History{}, fmt.Errorf("drill: %s: record %d: %w", path, line, err)
		}
		switch {
		case rec.Op != nil:
			h.Ops = append(h.Ops, *rec.Op)
		case rec.Event != nil:
			h.Events = append(h.Events, *rec.Event)
		default:
			return History{}, fmt.Errorf("drill: %s: record %d is neither an op nor an event", path, line)
		}
	}
}
