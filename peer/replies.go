package peer

import (
	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/protocol"
)

// readReplies reads a batch's reply into out, one result per call, with
// an rpc.ValueReader: no tree of any. It reads only the replies a healthy
// participant sends most (votes, commits and aborts acknowledged, reads),
// and gives up (false) on anything else, a fault entry among them: the
// reply is then decoded as a tree, by decodeResult, which says what is
// wrong with it. So what this reads must be what decodeResult would make
// of the same reply (FuzzReadReplies checks it).
func readReplies(r *rpc.ValueReader, batch []*pending, out []protocol.CallResult) bool {
	if !r.Array() {
		return false
	}
	for i, p := range batch {
		if !r.Next() {
			return false
		}
		var ok bool
		switch p.call.Kind {
		case protocol.MsgPrepare:
			out[i].Vote, ok = readVote(r)
		case protocol.MsgRead:
			out[i].Keys, ok = readKeys(r, p.call.Keys)
		default:
			ok = readTrue(r)
		}
		if !ok {
			return false
		}
	}
	return !r.Next() && !r.Failed()
}

func readTrue(r *rpc.ValueReader) bool {
	b, ok := r.Bool()
	return ok && b
}

// readVote reads ["yes"|"no"|"toolarge"|"readonly", succeeded, conflict,
// reason, [result, ...]].
func readVote(r *rpc.ValueReader) (protocol.Vote, bool) {
	var v protocol.Vote
	if !r.Array() || !r.Next() {
		return v, false
	}
	kind, ok := r.String()
	switch kind {
	case "yes":
		v.Kind = protocol.VoteYes
	case "no":
		v.Kind = protocol.VoteNo
	case "toolarge":
		v.Kind, v.TooLarge = protocol.VoteNo, true
	case "readonly":
		v.Kind = protocol.VoteReadOnly
	default:
		return v, false
	}
	ok = ok && r.Next()
	if ok {
		v.Succeeded, ok = r.Bool()
	}
	ok = ok && r.Next()
	if ok {
		v.Conflict, ok = r.Bool()
	}
	ok = ok && r.Next()
	if ok {
		v.Reason, ok = r.String()
	}
	if !ok || !r.Next() || !r.Array() {
		return v, false
	}
	for r.Next() {
		res, ok := readResult(r)
		if !ok {
			return v, false
		}
		v.Results = append(v.Results, res)
	}
	return v, !r.Failed() && !r.Next() // the vote's array ends after its results
}

// readResult reads ["put", version] | ["delete", existed] | ["get",
// found, version, value].
func readResult(r *rpc.ValueReader) (protocol.Result, bool) {
	var res protocol.Result
	if !r.Array() || !r.Next() {
		return res, false
	}
	name, ok := r.String()
	if !ok || !r.Next() {
		return res, false
	}
	switch name {
	case "put":
		res.Kind = protocol.OpPut
		res.Version, ok = r.Int()
	case "delete":
		res.Kind = protocol.OpDelete
		res.Existed, ok = r.Bool()
	case "get":
		res.Kind = protocol.OpGet
		res.Found, ok = r.Bool()
		ok = ok && r.Next()
		if ok {
			res.Version, ok = r.Int()
		}
		ok = ok && r.Next()
		if ok {
			res.Value, ok = readValue(r, res.Found)
		}
	default:
		return res, false
	}
	return res, ok && !r.Next() && !r.Failed()
}

// readKeys reads a read's reply: one [found, value, version, pending,
// next found, next value, next version] per key.
func readKeys(r *rpc.ValueReader, keys []string) ([]protocol.KeyState, bool) {
	if !r.Array() {
		return nil, false
	}
	out := make([]protocol.KeyState, 0, len(keys))
	for r.Next() {
		if len(out) == len(keys) || !r.Array() {
			return nil, false
		}
		ks := protocol.KeyState{Key: keys[len(out)]}
		var ok bool
		ks.Entry, ok = readEntry(r)
		ok = ok && r.Next()
		if ok {
			ks.Pending, ok = r.String()
		}
		if ok {
			ks.Next, ok = readEntry(r)
		}
		if !ok || r.Next() || r.Failed() {
			return nil, false
		}
		out = append(out, ks)
	}
	return out, !r.Failed() && len(out) == len(keys)
}

// readEntry reads found, value, version: the next three elements of the
// array being read.
func readEntry(r *rpc.ValueReader) (protocol.Entry, bool) {
	var e protocol.Entry
	ok := r.Next()
	if ok {
		e.Found, ok = r.Bool()
	}
	ok = ok && r.Next()
	if ok {
		e.Value, ok = readValue(r, e.Found)
	}
	ok = ok && r.Next()
	if ok {
		e.Version, ok = r.Int()
	}
	return e, ok
}

// readValue reads a value as valueOf takes it (a string or base64), if
// found; one that is not found is read and dropped, as decodeVote and
// decodeKeys drop it.
func readValue(r *rpc.ValueReader, found bool) (protocol.Value, bool) {
	data, binary, ok := r.Data()
	if !ok || !found {
		return protocol.Value{}, ok
	}
	return protocol.Value{Data: data, Binary: binary}, true
}
