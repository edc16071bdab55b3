package peer

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/participant"
	"github.com/twopc/twopc/protocol"
)

var ctx = context.Background()

var _ Backend = (*participant.Store)(nil)

func open(t *testing.T, path string) *participant.Store {
	t.Helper()
	s, err := participant.Open(path, participant.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t *testing.T) *participant.Store { return open(t, filepath.Join(t.TempDir(), "p.db")) }

func put(key, value string) *protocol.Txn {
	return &protocol.Txn{Success: []protocol.Op{{Kind: protocol.OpPut, Key: key, Value: protocol.Value{Data: []byte(value)}}}}
}

func mustRead(t *testing.T, s *participant.Store, key string) protocol.KeyState {
	t.Helper()
	ks, err := s.Read(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return ks[0]
}

// wireCall is c as a participant's server gets it: written by appendCall
// into a methodCall document, read back by rpc's decoder.
func wireCall(t testing.TB, c protocol.Call) any {
	t.Helper()
	var w rpc.ValueWriter
	appendCall(&w, c)
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	var doc bytes.Buffer
	if err := rpc.EncodeCall(&doc, "batch", w.Raw()); err != nil {
		t.Fatal(err)
	}
	_, params, err := rpc.DecodeCall(&doc, rpc.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return params[0]
}
