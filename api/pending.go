package api

import (
	"time"

	"github.com/twopc/twopc/coordinator"
	"github.com/twopc/twopc/protocol"
)

// EncodePending is the wire form of the transactions method's reply, the
// oldest first:
//
//	[{txid, state, waits_for: string, age_seconds: double (0: not known),
//	  keys, prepared_at, silent: [string],
//	  records: [{kind: string, participants, keys: [string]}]}]
func EncodePending(txs []coordinator.PendingTx) []any {
	out := make([]any, len(txs))
	for i, t := range txs {
		recs := make([]any, len(t.Records))
		for j, r := range t.Records {
			recs[j] = map[string]any{"kind": string(r.Kind), "participants": stringArray(r.Participants), "keys": stringArray(r.Keys)}
		}
		out[i] = map[string]any{
			"txid": t.ID, "state": t.State, "waits_for": t.WaitsFor, "age_seconds": t.Age.Seconds(),
			"keys": stringArray(t.Keys), "prepared_at": stringArray(t.PreparedAt), "silent": stringArray(t.Silent),
			"records": recs,
		}
	}
	return out
}

// DecodePending reads a transactions reply.
func DecodePending(v any) ([]coordinator.PendingTx, error) {
	d := decoder{method: "transactions"}
	a, ok := v.([]any)
	if !ok {
		d.fail("is %T, want array", v)
		return nil, d.err
	}
	out := make([]coordinator.PendingTx, 0, len(a))
	for _, e := range a {
		m := d.object(e, "transaction")
		t := coordinator.PendingTx{
			ID: d.str(m, "txid"), State: d.str(m, "state"), WaitsFor: d.str(m, "waits_for"),
			Age:  time.Duration(d.float(m, "age_seconds") * float64(time.Second)),
			Keys: d.strs(m, "keys"), PreparedAt: d.strs(m, "prepared_at"), Silent: d.strs(m, "silent"),
		}
		if rs, ok := m["records"].([]any); ok {
			for _, r := range rs {
				rm := d.object(r, "record")
				t.Records = append(t.Records, protocol.Record{Kind: protocol.Kind(d.str(rm, "kind")),
					TxID: t.ID, Participants: d.strs(rm, "participants"), Keys: d.strs(rm, "keys")})
			}
		}
		out = append(out, t)
	}
	return out, d.err
}

// stringArray is ss as an XML-RPC array (never nil: an empty array).
func stringArray(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
