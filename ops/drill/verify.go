package drill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

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
func checkTxlog(ctx context.Context, p Probe, limit int64, wait time.Duration) (string, error) {
	leader, err := p.waitOneLeader(ctx, wait)
	if err != nil {
		return "", err
	}
	data, err := p.leaderLog(ctx, leader)
	if errors.Is(err, errors.ErrUnsupported) {
		return "txlog not readable here", nil
	}
	if err != nil {
		return "", err
	}
	if consensus.IsRaftLogBytes(data) {
		return checkRaftLog(leader.Leader, data)
	}
	st, err := scanTxlog(data)
	if err != nil {
		return "", fmt.Errorf("txlog does not read back: %w", err)
	}
	data = bytes.TrimRight(data, "\n") // the padding (txlog.Appender) is no record
	lines := bytes.Split(data, []byte("\n"))
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
// "never stuck" rules out; only while the coordinators are between
// leaders is a put tried again, within wait. The writes join the history
// after the final reads, from client number client on.
func finalWrites(ctx context.Context, p Probe, keys []string, rec *recorder, client int, wait time.Duration) error {
	var errs []error
	deadline := time.Now().Add(wait)
	for _, key := range keys {
		for {
			op := Op{Client: client, Kind: Put, Key: key, Value: "final", Call: rec.now()}
			_, err := p.call(ctx, "put", op.Key, op.Value)
			op.Return = rec.now()
			op.Outcome, op.Err = OK, ""
			if err != nil {
				op.Outcome, _ = outcomeOf(err)
				op.Err = err.Error()
			}
			rec.op(op)
			if err == nil {
				break
			}
			if op.Outcome == Unknown {
				client++ // its put may still land: the next is another client's
			}
			// A coordinator between leaders (one paused while it led
			// steps down once resumed, and follows again) is not a stuck
			// key: once one leader is back, the put goes again.
			if _, lerr := p.oneLeader(ctx); lerr == nil || time.Until(deadline) <= 0 {
				errs = append(errs, fmt.Errorf("put %q on the settled cluster: %w", op.Key, err))
				break
			}
			if _, lerr := p.waitOneLeader(ctx, time.Until(deadline)); lerr != nil {
				errs = append(errs, fmt.Errorf("put %q on the settled cluster: %w (then %v)", op.Key, err, lerr))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// Terms is what the participants say of fencing at the end of a drill.
type Terms struct {
	// Leader is the term of the leader at the end (with one coordinator,
	// its epoch); Highest the highest term any status gave during the
	// drill.
	Leader, Highest uint64
	// Seen is each participant's highest term seen (stats: term).
	Seen map[string]uint64
	// Refusals counts each participant's refusals of a stale term
	// (stats: stale_term_refusals), over its every incarnation: what it
	// said just before each kill, plus what it says now.
	Refusals map[string]int64
}

// String is the summary's part: "term 7, stale-term refusals p1=0 p2=3 p3=1".
func (t Terms) String() string {
	var rs []string
	for _, name := range slices.Sorted(maps.Keys(t.Refusals)) {
		rs = append(rs, fmt.Sprintf("%s=%d", name, t.Refusals[name]))
	}
	return fmt.Sprintf("term %d, stale-term refusals %s", t.Leader, strings.Join(rs, " "))
}

// checkTerms reads every participant's stats on the settled cluster,
// after the final writes, and checks fencing's end state: each
// participant's term is the leader's term, no more and no less. No
// less, because the final writes reached every participant (they are
// all in the write set once settled) with the leader's term, and a
// participant raises its term durably before it answers a request of a
// higher one; no more, because only a leader's incarnation sends a term,
// and the leader now has the highest: a participant ahead of it heard
// from a coordinator that never led, or kept a term it was never sent.
// The leader's term must also be the highest any status gave during the
// drill (highest): terms never go back. The term is read again after
// the stats, so that an election in between (none is expected on a
// settled cluster) is reported as such rather than as a participant
// behind. before is what each participant's stats said of refusals
// before each of its kills.
func checkTerms(ctx context.Context, p Probe, highest uint64, before map[string]int64, wait time.Duration) (Terms, error) {
	t := Terms{Highest: highest, Seen: map[string]uint64{}, Refusals: map[string]int64{}}
	st, err := p.waitOneLeader(ctx, wait)
	if err != nil {
		return t, err
	}
	t.Leader = st.Term
	for _, name := range p.Participants() {
		s, err := p.participant(name).Stats(ctx)
		if err != nil {
			return t, fmt.Errorf("%s stats: %w", name, err)
		}
		t.Seen[name] = uint64(s["term"])
		t.Refusals[name] = before[name] + s["stale_term_refusals"]
	}
	if again, err := p.waitOneLeader(ctx, wait); err != nil || again.Term != t.Leader {
		return t, fmt.Errorf("the leader's term changed on the settled cluster, from %d (now %d, %v)", t.Leader, again.Term, err)
	}
	return t, t.check(p.Participants())
}

// check is checkTerms's verdict on what it read.
func (t Terms) check(participants []string) error {
	var errs []error
	for _, name := range participants {
		if t.Seen[name] != t.Leader {
			errs = append(errs, fmt.Errorf("%s has seen term %d, the leader's is %d", name, t.Seen[name], t.Leader))
		}
	}
	if t.Leader < t.Highest {
		errs = append(errs, fmt.Errorf("the leader's term is %d, but a status gave term %d during the drill: terms went back", t.Leader, t.Highest))
	}
	return errors.Join(errs...)
}

// raftLogSlack is how many entries past consensus.DefaultSnapshotEntries
// a settled raft log may hold: those of the batch applied after the last
// snapshot.
const raftLogSlack = 1000

// checkRaftLog is checkTxlog for the leader's copy of the replicated
// log: it reads back, every commit in it has its end, and snapshots keep
// it short (raft compacts by entries, not bytes).
func checkRaftLog(leader string, data []byte) (string, error) {
	sc, err := consensus.ScanLeaderBytes("raft log (the leader's copy)", data)
	if err != nil {
		return "", fmt.Errorf("raft log does not read back: %w", err)
	}
	desc := fmt.Sprintf("raft log of the leader %s: %d bytes, term %d, %d entries past its snapshot", leader, sc.Bytes, sc.Term, sc.Entries)
	var errs []error
	if sc.Torn {
		errs = append(errs, errors.New("raft log has a torn tail on a settled cluster"))
	}
	if len(sc.State.Pending) > 0 {
		errs = append(errs, fmt.Errorf("raft log holds %d unfinished transactions (staged or committed, never ended)", len(sc.State.Pending)))
	}
	if sc.Entries > consensus.DefaultSnapshotEntries+raftLogSlack {
		errs = append(errs, fmt.Errorf("raft log holds %d entries past its snapshot, more than the %d snapshots should keep it under",
			sc.Entries, consensus.DefaultSnapshotEntries+raftLogSlack))
	}
	return desc, errors.Join(errs...)
}
