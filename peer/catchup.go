package peer

import (
	"context"
	"fmt"

	"github.com/twopc/twopc/protocol"
)

// The catch-up methods' wire format (see coordinator/catchup.go):
//
//	scan(after string, limit int) -> [more bool, [state, ...]]
//	  state: [key, found bool, value, version int, pending txid|"", next found bool, next value, next version int]
//	install(reset bool, fence string, [write, ...]) -> true
//	  write: [key, found bool, value, version int]

// MaxScan is the most keys one scan may ask for.
const MaxScan = 10_000

func encodeScan(states []protocol.KeyState, more bool) []any {
	out := make([]any, len(states))
	for i, k := range states {
		out[i] = []any{k.Key, k.Entry.Found, wireValue(k.Entry.Value), k.Entry.Version, k.Pending,
			k.Next.Found, wireValue(k.Next.Value), k.Next.Version}
	}
	return []any{more, out}
}

func decodeScan(v any) ([]protocol.KeyState, bool, error) {
	a, err := array(v, 2, "scan reply")
	if err != nil {
		return nil, false, err
	}
	more, ok := a[0].(bool)
	if !ok {
		return nil, false, fmt.Errorf("scan reply: want a boolean first, got %T", a[0])
	}
	list, err := array(a[1], -1, "scan states")
	if err != nil {
		return nil, false, err
	}
	states := make([]protocol.KeyState, len(list))
	for i, sv := range list {
		s, err := array(sv, 8, "key state")
		if err != nil {
			return nil, false, err
		}
		if states[i].Key, err = str(s[0], "key"); err != nil {
			return nil, false, err
		}
		if err := decodeEntry(s[1:4], &states[i].Entry); err != nil {
			return nil, false, err
		}
		states[i].Pending, _ = s[4].(string)
		if err := decodeEntry(s[5:8], &states[i].Next); err != nil {
			return nil, false, err
		}
	}
	return states, more, nil
}

// decodeEntry reads [found, value, version].
func decodeEntry(a []any, e *protocol.Entry) error {
	var ok bool
	if e.Found, ok = a[0].(bool); !ok {
		return fmt.Errorf("entry: want found as a boolean, got %T", a[0])
	}
	if e.Version, ok = a[2].(int64); !ok {
		return fmt.Errorf("entry: want version as an int, got %T", a[2])
	}
	if !e.Found {
		return nil
	}
	var err error
	e.Value, err = valueOf(a[1])
	return err
}

func encodeInstall(in *protocol.Install) []any {
	writes := make([]any, len(in.Writes))
	for i, w := range in.Writes {
		writes[i] = []any{w.Key, w.Found, wireValue(w.Value), w.Version}
	}
	return []any{in.Reset, in.Fence, writes}
}

func decodeInstall(ps []any) (*protocol.Install, error) {
	if len(ps) != 3 {
		return nil, fmt.Errorf("want 3 params (reset, fence, writes), got %d", len(ps))
	}
	in := &protocol.Install{}
	var ok bool
	if in.Reset, ok = ps[0].(bool); !ok {
		return nil, fmt.Errorf("reset: want a boolean, got %T", ps[0])
	}
	if in.Fence, ok = ps[1].(string); !ok {
		return nil, fmt.Errorf("fence: want a string, got %T", ps[1])
	}
	list, err := array(ps[2], -1, "writes")
	if err != nil {
		return nil, err
	}
	in.Writes = make([]protocol.Write, len(list))
	for i, wv := range list {
		a, err := array(wv, 4, "write")
		if err != nil {
			return nil, err
		}
		if in.Writes[i].Key, err = str(a[0], "write key"); err != nil {
			return nil, err
		}
		if err := decodeEntry(a[1:4], &in.Writes[i].Entry); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// Scan reads a page of the participant's keys for a catch-up.
func (c *Client) Scan(ctx context.Context, after string, limit int) ([]protocol.KeyState, bool, error) {
	res, err := c.rpc.Call(ctx, "scan", after, int64(limit))
	if err != nil {
		return nil, false, err
	}
	states, more, err := decodeScan(res)
	if err != nil {
		return nil, false, fmt.Errorf("peer: malformed scan reply: %w", err)
	}
	return states, more, nil
}

// Install writes one catch-up step at the participant.
func (c *Client) Install(ctx context.Context, in *protocol.Install) error {
	_, err := c.rpc.Call(ctx, "install", encodeInstall(in)...)
	return err
}
