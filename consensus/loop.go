package consensus

import (
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/twopc/twopc/protocol"
	"github.com/twopc/twopc/txlog"
)

// run is the only goroutine that touches the RawNode: it ticks, steps
// what arrived, proposes what was queued, and handles each Ready the
// way etcd raft asks: persist, then send, then apply.
func (n *Node) run() {
	defer close(n.done)
	defer n.wal.close()
	defer close(n.notes)
	defer close(n.roles)
	ticker := time.NewTicker(n.cfg.Tick)
	defer ticker.Stop()
	for {
		select {
		case <-n.stop:
			n.leave()
			return
		case <-ticker.C:
			n.rn.Tick()
			if len(n.readRounds) > 0 {
				n.askReadIndex(nil) // in case raft lost one: see askReadIndex
			}
		case <-n.wake:
		}
		n.mu.Lock()
		inbox, reports, reads := n.inbox, n.reports, n.readsQueued
		n.inbox, n.reports, n.readsQueued = nil, nil, nil
		var props []proposal
		if n.propsUrgent { // else they linger, for a record that is not lazy
			props, n.props, n.propsUrgent = n.props, nil, false
		}
		n.mu.Unlock()
		for _, r := range reports {
			r(n.rn)
		}
		for _, m := range inbox {
			_ = n.rn.Step(m) // raft drops what it cannot use; nothing to do
		}
		// Proposals go in once every Ready is handled, so that the log's
		// last index is the storage's and each proposal's index is known.
		err := n.handleAll()
		if err == nil && (len(props) > 0 || len(reads) > 0) {
			n.proposeAll(props)
			if len(reads) > 0 {
				n.askReadIndex(reads)
			}
			err = n.handleAll()
		}
		if err != nil {
			// The log cannot be written: this node must not vote or
			// acknowledge anything more. Stop; the others go on.
			n.log.Error("consensus: raft log failed; this coordinator leaves the group until restarted", "err", err)
			n.leave()
			return
		}
	}
}

// leave: this node takes no further part; whatever it served ends.
func (n *Node) leave() {
	n.setServing(0) // before the waits hear of it: see ServingTerm
	n.failWaits()
	n.roles <- Role{Term: n.hard.Term}
}

func (n *Node) handleAll() error {
	for n.rn.HasReady() {
		if err := n.handle(n.rn.Ready()); err != nil {
			return err
		}
	}
	return nil
}

// proposeAll appends props to the log if this node serves in their term.
func (n *Node) proposeAll(props []proposal) {
	if len(props) == 0 {
		return
	}
	var ok []proposal
	var failed []func()
	for _, p := range props {
		if n.leader && p.term == n.hard.Term && n.epochProposed {
			ok = append(ok, p)
		} else if p.then != nil {
			then := p.then
			failed = append(failed, func() { then(ErrNotLeader) })
		}
	}
	if len(ok) > 0 {
		ents := make([]raftpb.Entry, len(ok))
		for i, p := range ok {
			ents[i].Data = p.data
		}
		last, _ := n.storage.LastIndex()
		if err := n.rn.Step(raftpb.Message{Type: raftpb.MsgProp, From: n.id, Entries: ents}); err != nil {
			for _, p := range ok {
				if p.then != nil {
					then := p.then
					failed = append(failed, func() { then(ErrNotLeader) })
				}
			}
		} else {
			for i, p := range ok {
				if p.then != nil {
					n.waits = append(n.waits, wait{index: last + 1 + uint64(i), term: p.term, then: p.then})
				}
			}
		}
	}
	n.note(failed)
}

// handle carries out one Ready.
func (n *Node) handle(rd raft.Ready) error {
	var hs *raftpb.HardState
	if !raft.IsEmptyHardState(rd.HardState) {
		hs = &rd.HardState
	}
	// A change of commit index alone need not be durable (it is learnt
	// again from the leader): only term, vote or new entries are synced.
	sync := len(rd.Entries) > 0 || !raft.IsEmptySnap(rd.Snapshot) ||
		(hs != nil && (hs.Term != n.hard.Term || hs.Vote != n.hard.Vote))
	// A leader may send its entries while it writes them (raft thesis
	// 10.2.1; etcd does the same): they count once a majority wrote them,
	// its own disk included. Everyone else answers only for what is on
	// its disk, so it sends after.
	early := rd.SoftState != nil && rd.SoftState.RaftState == raft.StateLeader ||
		rd.SoftState == nil && n.leader
	if early {
		n.sendAll(rd.Messages)
	}
	if sync {
		if err := n.wal.save(rd.Snapshot, rd.Entries, hs); err != nil {
			return err
		}
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.storage.ApplySnapshot(rd.Snapshot); err != nil {
			return err
		}
		if err := n.applySnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	if err := n.storage.Append(rd.Entries); err != nil {
		return err
	}
	if hs != nil {
		n.hard = *hs
		_ = n.storage.SetHardState(*hs)
	}
	if rd.SoftState != nil {
		n.roleChanged(*rd.SoftState)
	}
	if !early {
		n.sendAll(rd.Messages)
	}
	if err := n.apply(rd.CommittedEntries); err != nil {
		return err
	}
	n.readsAnswered(rd.ReadStates)
	n.rn.Advance(rd)
	return n.maybeSnapshot()
}

// roleChanged: a new leader (or none). A node that starts leading
// proposes its epoch record; it serves once that is applied.
func (n *Node) roleChanged(ss raft.SoftState) {
	was := n.leader
	n.leader, n.lead = ss.RaftState == raft.StateLeader, ss.Lead
	if was && !n.leader || n.leader && !was {
		n.setServing(0) // before the waits hear of it: see ServingTerm
		n.failWaits()
		n.epochProposed = false
	}
	if n.leader && !was {
		// Only a leader proposes an epoch record, once per term, with its
		// term: applying one of this term tells this leader it serves.
		n.epochProposed = n.rn.Step(raftpb.Message{Type: raftpb.MsgProp, From: n.id, Entries: []raftpb.Entry{{
			Data: txlog.AppendRecord(nil, protocol.Record{Kind: protocol.KindEpoch, Epoch: n.hard.Term}),
		}}}) == nil
	}
	n.roles <- Role{Leader: n.nameOf(n.lead), Term: n.hard.Term}
}

// apply feeds committed entries to the state machine and tells the
// waits they settle.
func (n *Node) apply(ents []raftpb.Entry) error {
	var notes []func()
	for _, e := range ents {
		switch e.Type {
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := cc.Unmarshal(e.Data); err != nil {
				return err
			}
			n.applyConfChange(cc)
		case raftpb.EntryNormal:
			if len(e.Data) == 0 {
				break
			}
			rec, err := txlog.ParseRecord(e.Data)
			if err != nil {
				return err
			}
			if err := n.tracker.Apply(rec); err != nil {
				// An epoch that does not increase: only a leader's own
				// epoch record, once per term, is ever proposed, so this
				// is a bug; leave the state as it is and say so.
				n.log.Error("consensus: committed record not applied", "index", e.Index, "record", string(e.Data), "err", err)
			}
			if rec.Kind == protocol.KindEpoch && n.leader && n.epochProposed && rec.Epoch == e.Term && e.Term == n.hard.Term {
				n.setServing(e.Term)
				n.roles <- Role{Serving: true, State: n.tracker.State(), Leader: n.cfg.Name, Term: e.Term}
			}
		}
		notes = append(notes, n.settleConfWaits(e)...)
		for len(n.waits) > 0 && n.waits[0].index <= e.Index {
			w := n.waits[0]
			n.waits = n.waits[1:]
			var err error
			if w.index != e.Index || w.term != e.Term {
				err = ErrNotLeader // overwritten by another leader's entry
			}
			notes = append(notes, func() { w.then(err) })
		}
		n.applied = e.Index
	}
	n.note(notes)
	return nil
}

// maybeSnapshot compacts the log once enough entries were applied since
// the last snapshot.
func (n *Node) maybeSnapshot() error {
	if n.applied <= n.snapIndex || n.applied < n.snapIndex+n.cfg.SnapshotEntries && !(n.confChanged && n.snapIndex > 0) {
		return nil
	}
	n.confChanged = false
	snap, err := n.storage.CreateSnapshot(n.applied, &n.conf, n.peers.appendSnapshot(snapshotData(n.tracker.Records())))
	if err != nil {
		return err
	}
	if err := n.storage.Compact(n.applied); err != nil {
		return err
	}
	first, _ := n.storage.FirstIndex()
	last, _ := n.storage.LastIndex()
	var ents []raftpb.Entry
	if last >= first {
		if ents, err = n.storage.Entries(first, last+1, 1<<62); err != nil {
			return err
		}
	}
	if err := n.wal.rewrite(n.hard, snap, ents); err != nil {
		return err
	}
	n.snapIndex = n.applied
	return nil
}

// failWaits: this node stopped leading; what it proposed may or may not
// be committed by the next leader.
func (n *Node) failWaits() {
	var notes []func()
	for _, w := range append(n.waits, n.confWaits...) {
		then := w.then
		notes = append(notes, func() { then(ErrNotLeader) })
	}
	n.waits, n.confWaits = nil, nil
	n.note(notes)
	n.failReads()
}

func (n *Node) setServing(term uint64) {
	n.mu.Lock()
	n.serving = term
	n.mu.Unlock()
}

// note hands callbacks to the notifier, in order.
func (n *Node) note(fs []func()) {
	if len(fs) > 0 {
		n.notes <- fs
	}
}

// notify runs callbacks in the order the loop produced them.
func (n *Node) notify() {
	for fs := range n.notes {
		for _, f := range fs {
			f()
		}
	}
}

// announce tells OnRole of each role in turn. It has a goroutine of its
// own so that a consumer that waits (stopping a coordinator waits for
// its transactions) never holds up the callbacks they wait for.
func (n *Node) announce() {
	for r := range n.roles {
		n.cfg.OnRole(r)
	}
}
