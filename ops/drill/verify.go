package drill

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/twopc/twopc/consensus"
	"github.com/twopc/twopc/protocol"
)

// checkReplicas compares the participants' digests: after settling, every
// replica must hold exactly the same data.
func checkReplicas(ctx context.Context, p Probe) error {
	names := p.Participants()
	var ds []protocol.Digest
	for _, name := range names {
		d, err := p.participant(name).Digest(ctx)
		if err != nil {
			return fmt.Errorf("%s digest: %w", name, err)
		}
		ds = append(ds, d)
	}
	return CompareDigests(names, ds)
}

// CompareDigests returns an error naming every replica whose digest
// differs from the first one's, or that still holds prepared transactions.
func CompareDigests(names []string, ds []protocol.Digest) error {
	var errs []error
	for i, d := range ds {
		if d.Prepared != 0 {
			errs = append(errs, fmt.Errorf("%s still holds %d prepared transactions", names[i], d.Prepared))
		}
		if i > 0 && (d.Keys != ds[0].Keys || d.Hash != ds[0].Hash) {
			errs = append(errs, fmt.Errorf("replicas differ: %s has %d keys (hash %.12s), %s has %d keys (hash %.12s)",
				names[0], ds[0].Keys, ds[0].Hash, names[i], d.Keys, d.Hash))
		}
	}
	return errors.Join(errs...)
}

// finalReads reads every key of the drill at every participant directly,
// and records the answers as operations of the history: if one replica
// shows a write the others do not, the history cannot be linearized. A
// key still prepared (locked) at a replica is a violation of its own.
func finalReads(ctx context.Context, p Probe, keys []string, rec *recorder, client int) error {
	var errs []error
	for i, name := range p.Participants() {
		pc := p.participant(name)
		for _, key := range keys {
			call := rec.now()
			ks, err := pc.Read(ctx, key)
			if err != nil {
				return fmt.Errorf("final read of %q at %s: %w", key, name, err)
			}
			r := ks[0]
			if r.Pending != "" {
				errs = append(errs, fmt.Errorf("key %q still locked at %s by %s", key, name, r.Pending))
			}
			rec.op(Op{Client: client + i, Kind: Get, Key: key, Value: string(r.Entry.Value.Data), Found: r.Entry.Found, Version: r.Entry.Version,
				Outcome: OK, Call: call, Return: rec.now(), Replica: name})
		}
	}
	return errors.Join(errs...)
}

// checkTxlog checks that the log reads back cleanly, that every commit in
// it has its end, and that compaction keeps it small: at most limit bytes.
// It returns a description of the log for the summary.
func checkTxlog(ctx context.Context, p Probe, limit int64) (string, error) {
	data, err := p.ReadTxlog(ctx)
	if errors.Is(err, errors.ErrUnsupported) {
		return "txlog not readable here", nil
	}
	if err != nil {
		return "", err
	}
	st, err := scanTxlog(data)
	if err != nil {
		return "", fmt.Errorf("txlog does not read back: %w", err)
	}
	if consensus.IsRaftLogBytes(data) {
		// Raft compacts by entries, to a snapshot, not by size: the
		// limit is a txlog's.
		desc := fmt.Sprintf("raft log (one coordinator's copy) %d bytes, epoch %d", len(data), st.Epoch)
		if len(st.Pending) > 0 {
			return desc, fmt.Errorf("raft log holds %d unfinished transactions (staged or committed, never ended)", len(st.Pending))
		}
		return desc, nil
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	epochs := 0
	for _, l := range lines {
		if f := bytes.Fields(l); len(f) > 1 && string(f[1]) == "epoch" {
			epochs++
		}
	}
	// Every start logs an epoch and compaction keeps only the latest, so
	// fewer epoch records than epochs means it has compacted.
	compacted := "never compacted"
	if uint64(epochs) < st.Epoch {
		compacted = "compacted"
	}
	desc := fmt.Sprintf("txlog %d bytes, %d records, epoch %d, %s", len(data), len(lines), st.Epoch, compacted)
	var errs []error
	if st.TornTail != nil {
		errs = append(errs, fmt.Errorf("txlog has a torn tail at offset %d on a settled cluster", st.TornTail.Offset))
	}
	if len(st.Pending) > 0 {
		errs = append(errs, fmt.Errorf("txlog holds %d unfinished transactions (staged or committed, never ended)", len(st.Pending)))
	}
	if int64(len(data)) > limit {
		errs = append(errs, fmt.Errorf("txlog is %d bytes, more than the %d compaction should keep it under", len(data), limit))
	}
	return desc, errors.Join(errs...)
}

// finalWrites puts every key once more through the coordinator, on a
// settled cluster with no other client: each must succeed at once. A
// conflict or unavailable fault now means a key stayed locked (at the
// coordinator or a participant) or a process stopped serving, which
// "never stuck" rules out. The writes join the history after the final
// reads.
func finalWrites(ctx context.Context, p Probe, keys []string, rec *recorder, client int) error {
	var errs []error
	for _, key := range keys {
		op := Op{Client: client, Kind: Put, Key: key, Value: "final", Call: rec.now()}
		_, err := p.call(ctx, "put", op.Key, op.Value)
		op.Return = rec.now()
		op.Outcome, op.Err = OK, ""
		if err != nil {
			op.Outcome, _ = outcomeOf(err)
			op.Err = err.Error()
			errs = append(errs, fmt.Errorf("put %q on the settled cluster: %w", op.Key, err))
		}
		rec.op(op)
	}
	return errors.Join(errs...)
}
