package participant

import (
	"context"
	"fmt"
	"sync"
)

// CallKind says what one entry of a batch asks for.
type CallKind int

const (
	CallPrepare CallKind = iota
	CallCommit
	CallAbort
	CallRead
)

var callNames = [...]string{"prepare", "commit", "abort", "read"}

func (k CallKind) String() string { return callNames[k] }

func parseCallKind(s string) (CallKind, error) {
	for i, n := range callNames {
		if n == s {
			return CallKind(i), nil
		}
	}
	return 0, fmt.Errorf("unknown call %q (want prepare, commit, abort or read)", s)
}

// Call is one entry of a batch.
type Call struct {
	Kind  CallKind
	TxID  string // prepare, commit, abort
	Write Write  // prepare
	Key   string // read
}

// Reply is the answer to one Call.
type Reply struct {
	Vote Vote       // prepare
	Read ReadResult // read
	Err  error
}

// Batch runs many calls at once. Its prepares, commits and aborts are
// applied in one SQLite transaction (one fsync for all of them); its
// reads run concurrently on the read connections. Replies are in the
// order of calls.
func (s *Store) Batch(ctx context.Context, calls []Call) []Reply {
	replies := make([]Reply, len(calls))
	var writes []*request
	var at []int // index in calls of each write
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, c := range calls {
		switch c.Kind {
		case CallRead:
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				replies[i].Read, replies[i].Err = s.Read(ctx, c.Key)
			})
		default:
			kind := map[CallKind]requestKind{CallPrepare: reqPrepare, CallCommit: reqCommit, CallAbort: reqAbort}[c.Kind]
			writes = append(writes, &request{kind: kind, txid: c.TxID, write: c.Write})
			at = append(at, i)
		}
	}
	if len(writes) > 0 {
		err := s.submit(ctx, writes...)
		for j, r := range writes {
			rep := &replies[at[j]]
			rep.Vote, rep.Err = r.vote, r.err
			if err != nil {
				rep.Err = err
			}
		}
	}
	wg.Wait()
	return replies
}
