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
	// Transaction is a txn: compares, then one branch of put, delete and
	// get ops, over one to a few keys (Op.Txn).
	Transaction Kind = "txn"
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
	Client  int    `json:"client"` // a client that lost a call in flight continues under a new number
	Kind    Kind   `json:"kind"`
	Key     string `json:"key,omitempty"`     // put, get, delete
	Value   string `json:"value,omitempty"`   // put: written; get: read (when Found)
	Found   bool   `json:"found,omitempty"`   // get: the key had a value
	Existed bool   `json:"existed,omitempty"` // delete: the key had a value
	// Version is the version a get observed, when it did: a final read at
	// a replica does, a plain get does not (0; a key that has a value
	// has a version of at least 1, so 0 with Found means "not observed").
	Version int64  `json:"version,omitempty"`
	Txn     *TxnOp `json:"txn,omitempty"` // Kind Transaction: the call and its answer
	// Bank is the operation's part in a bank drill: "init", "read" (of
	// a transfer), "transfer" or "audit"; empty in the random load.
	Bank    string  `json:"bank,omitempty"`
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
	switch {
	case o.Kind == Put:
		in = fmt.Sprintf("put(%q, %q)", o.Key, o.Value)
	case o.Kind == Transaction && o.Txn != nil:
		in = o.Txn.String()
	}
	if o.Replica != "" {
		in += "@" + o.Replica
	}
	switch {
	case o.Outcome != OK:
		return fmt.Sprintf("%s -> %s (%s)", in, o.Outcome, o.Err)
	case o.Kind == Transaction && o.Txn != nil:
		return in + " -> " + o.Txn.answer()
	case o.Kind == Get && o.Found && o.Version != 0:
		return fmt.Sprintf("%s -> %q v%d", in, o.Value, o.Version)
	case o.Kind == Get && o.Found:
		return fmt.Sprintf("%s -> %q", in, o.Value)
	case o.Kind == Get:
		return in + " -> not found"
	case o.Kind == Delete:
		return fmt.Sprintf("%s -> %v", in, o.Existed)
	}
	return in + " -> ok"
}

// valid refuses an operation the checker could not replay: a kind it
// does not know, or a transaction the coordinator would refuse.
func (o Op) valid() error {
	switch o.Kind {
	case Get, Put, Delete:
		return nil
	case Transaction:
		if o.Txn == nil {
			return fmt.Errorf("txn without its call")
		}
		if o.Outcome == OK && len(o.Txn.Results) != len(o.Txn.ran()) {
			return fmt.Errorf("txn answered with %d results for the %d ops of the branch that ran", len(o.Txn.Results), len(o.Txn.ran()))
		}
		_, err := o.Txn.protocol()
		return err
	}
	return fmt.Errorf("unknown kind %q", o.Kind)
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
			if err := rec.Op.valid(); err != nil {
				return History{}, fmt.Errorf("drill: %s: record %d: %w", path, line, err)
			}
			h.Ops = append(h.Ops, *rec.Op)
		case rec.Event != nil:
			h.Events = append(h.Events, *rec.Event)
		default:
			return History{}, fmt.Errorf("drill: %s: record %d is neither an op nor an event", path, line)
		}
	}
}
