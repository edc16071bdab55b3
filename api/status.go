package api

import (
	"fmt"

	"github.com/twopc/twopc/coordinator"
	"github.com/twopc/twopc/txlog"
)

// EncodeStatus is the wire form of the status method's reply:
//
//	{epoch, term, committed, aborted, in_doubt, active, cache_hits, cache_misses: int,
//	 role: "single"|"leader"|"follower", leader: string (a coordinator's name, "" if none),
//	 participants: [{name, url, state, in_flight, bytes_sent, bytes_received: int,
//	                 prepared: int (absent while the participant is offline)}],
//	 log: {fsyncs, records, bytes, compactions: int} (absent if not kept)}
//
// Counters count since the coordinator started (its epoch): they reset
// at every restart.
func EncodeStatus(st coordinator.Status) map[string]any {
	ps := make([]any, len(st.Participants))
	for i, p := range st.Participants {
		m := map[string]any{"name": p.Name, "url": p.URL, "state": p.State, "in_flight": p.InFlight,
			"bytes_sent": p.BytesSent, "bytes_received": p.BytesReceived}
		if p.State != coordinator.StateOffline {
			m["prepared"] = p.Prepared
		}
		ps[i] = m
	}
	out := map[string]any{
		"epoch": int64(st.Epoch), "participants": ps,
		"role": st.Role, "leader": st.Leader, "term": int64(st.Term),
		"committed": int64(st.Committed), "aborted": int64(st.Aborted),
		"in_doubt": st.InDoubt, "active": st.Active,
		"cache_hits": int64(st.CacheHits), "cache_misses": int64(st.CacheMisses),
	}
	if l := st.Log; l != nil {
		out["log"] = map[string]any{"fsyncs": int64(l.Fsyncs), "records": int64(l.Records), "bytes": l.Bytes, "compactions": int64(l.Compactions)}
	}
	return out
}

// DecodeStatus reads a status reply. Fields it does not know are ignored,
// so that a newer coordinator can add some; a field of the wrong type is
// an error.
func DecodeStatus(v any) (coordinator.Status, error) {
	var st coordinator.Status
	d := decoder{method: "status"}
	m := d.object(v, "status")
	st.Epoch = uint64(d.int(m, "epoch"))
	st.Role, st.Leader, st.Term = d.str(m, "role"), d.str(m, "leader"), uint64(d.int(m, "term"))
	st.Committed = uint64(d.int(m, "committed"))
	st.Aborted = uint64(d.int(m, "aborted"))
	st.InDoubt = d.int(m, "in_doubt")
	st.Active = d.int(m, "active")
	st.CacheHits = uint64(d.int(m, "cache_hits"))
	st.CacheMisses = uint64(d.int(m, "cache_misses"))
	if ps, ok := m["participants"].([]any); ok {
		for _, e := range ps {
			pm := d.object(e, "participant")
			st.Participants = append(st.Participants, coordinator.ParticipantStatus{
				Name: d.str(pm, "name"), URL: d.str(pm, "url"), State: d.str(pm, "state"),
				InFlight: d.int(pm, "in_flight"), Prepared: int(d.int(pm, "prepared")),
				BytesSent: d.int(pm, "bytes_sent"), BytesReceived: d.int(pm, "bytes_received"),
			})
		}
	} else if m["participants"] != nil {
		d.fail("participants is %T, want array", m["participants"])
	}
	if lv, ok := m["log"]; ok {
		lm := d.object(lv, "log")
		st.Log = &txlog.Stats{Fsyncs: uint64(d.int(lm, "fsyncs")), Records: uint64(d.int(lm, "records")),
			Bytes: d.int(lm, "bytes"), Compactions: uint64(d.int(lm, "compactions"))}
	}
	return st, d.err
}

// decoder reads struct members of a method's reply, keeping the first
// type error.
type decoder struct {
	method string
	err    error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("api: %s reply: "+format, append([]any{d.method}, args...)...)
	}
}

func (d *decoder) object(v any, what string) map[string]any {
	m, ok := v.(map[string]any)
	if !ok {
		d.fail("%s is %T, want struct", what, v)
	}
	return m
}

// member reads m's member name as a T (its XML-RPC type is want); a
// missing one is T's zero value.
func member[T any](d *decoder, m map[string]any, name, want string) T {
	v, ok := m[name]
	if !ok {
		var zero T
		return zero
	}
	t, ok := v.(T)
	if !ok {
		d.fail("%s is %T, want %s", name, v, want)
	}
	return t
}

func (d *decoder) int(m map[string]any, name string) int64 { return member[int64](d, m, name, "int") }

func (d *decoder) str(m map[string]any, name string) string {
	return member[string](d, m, name, "string")
}

func (d *decoder) float(m map[string]any, name string) float64 {
	return member[float64](d, m, name, "double")
}

// strs reads an array of strings; a missing one is nil.
func (d *decoder) strs(m map[string]any, name string) []string {
	v, ok := m[name]
	if !ok {
		return nil
	}
	a, ok := v.([]any)
	if !ok {
		d.fail("%s is %T, want array", name, v)
		return nil
	}
	out := make([]string, 0, len(a))
	for _, e := range a {
		s, ok := e.(string)
		if !ok {
			d.fail("%s holds a %T, want string", name, e)
		}
		out = append(out, s)
	}
	return out
}
