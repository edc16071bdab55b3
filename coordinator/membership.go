package coordinator

import (
	"context"
	"time"

	"github.com/twopc/twopc/protocol"
)

// This file is the write set: which participants a transaction needs.
//
// A participant that stops answering is excluded, so that writes go on
// without it: after ExcludeAfter without a successful answer while a
// call to it is out or has failed, as long as MinParticipants stay. The
// exclude record is durable in the log before any machine hears of it
// (protocol.EvExcluded), and a machine commits without a participant
// only once it has heard: so no write commits without a participant
// whose exclusion a crash could lose. Transactions started afterwards
// go to the rest; reads use only the rest.
//
// Every acknowledged write is then on at least MinParticipants
// participants. An excluded participant is behind, and may even have
// been told a presumed abort of a transaction the others committed
// without it: it stays excluded (the log keeps it so across restarts)
// until it has caught up from a participant in the write set
// (catchup.go), which the watcher starts as soon as it answers.

// writeSet is the participants not excluded, in configuration order.
type writeSet struct {
	names   []string
	members []*member
}

// setWriteSet recomputes the write set from the members' flags.
func (c *Coordinator) setWriteSet() {
	ws := &writeSet{}
	for _, m := range c.roster.Load().members {
		if !m.excluded.Load() {
			ws.names = append(ws.names, m.Name)
			ws.members = append(ws.members, m)
		}
	}
	c.writeSet.Store(ws)
}

// heard records the result of a call to m, for exclusion.
func (m *member) heard(err error) {
	if err == nil {
		m.lastOK.Store(time.Now().UnixNano())
	} else {
		m.failedAt.Store(time.Now().UnixNano())
	}
}

// silent reports whether m has gone ExcludeAfter without answering while
// a call to it was out or had failed (a participant nobody calls is not
// silent: the watcher probes it).
func (c *Coordinator) silent(m *member, now int64) bool {
	ok := m.lastOK.Load()
	return now-ok >= int64(c.cfg.ExcludeAfter) && (m.inflight.Load() > 0 || m.failedAt.Load() > ok)
}

// watchMembers probes participants that nobody has called lately,
// excludes those that stay silent, one at a time, and brings excluded
// ones back, until Close.
func (c *Coordinator) watchMembers() {
	// A check costs a few atomic loads per participant: tick often, so
	// that an exclusion comes soon after ExcludeAfter, not up to a tick
	// later.
	every := 100 * time.Millisecond
	if c.cfg.ExcludeAfter > 0 {
		every = min(max(c.cfg.ExcludeAfter/10, 10*time.Millisecond), every)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
		}
		c.checkMembers(time.Now().UnixNano())
	}
}

// checkMembers starts a catch-up of an excluded participant (one at a
// time; rejoin backs off while it does not answer). With ExcludeAfter,
// it then excludes who is silent, as long as the write set keeps
// MinParticipants, and probes who has been idle for half of
// ExcludeAfter: a probe sent now is judged by a later check, so a
// participant has the other half to answer it.
func (c *Coordinator) checkMembers(now int64) {
	for _, m := range c.roster.Load().members {
		if m.excluded.Load() && !c.cfg.manualRejoin && now >= m.nextRejoin.Load() && c.rejoining.CompareAndSwap(false, true) {
			c.goBackground(func() { c.rejoin(m) })
		}
	}
	if c.cfg.ExcludeAfter <= 0 {
		return
	}
	c.membersMu.Lock() // one exclusion at a time, so the count holds
	for _, m := range c.writeSet.Load().members {
		if c.silent(m, now) && len(c.writeSet.Load().names) > c.minParticipants() {
			c.exclude(m, time.Duration(now-m.lastOK.Load()))
		}
	}
	c.membersMu.Unlock()
	for _, m := range c.writeSet.Load().members {
		if now-m.lastOK.Load() >= int64(c.cfg.ExcludeAfter/2) && m.inflight.Load() == 0 {
			c.probe(m)
		}
	}
}

// probe asks m something cheap, in the background: its answer (or its
// silence, counted as a call out) is what silent reads.
func (c *Coordinator) probe(m *member) {
	if !m.probing.CompareAndSwap(false, true) {
		return
	}
	m.inflight.Add(1)
	c.goBackground(func() {
		defer m.probing.Store(false)
		defer m.inflight.Add(-1)
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.CallTimeout)
		defer cancel()
		_, err := m.PreparedTxs(ctx)
		if c.ctx.Err() == nil {
			m.heard(err)
			c.noticeDeposed(err)
		}
	})
}

// exclude takes m out of the write set: the record first, durably; then
// the write set; then every transaction in flight hears of it. A
// transaction that starts meanwhile checks for itself (start).
func (c *Coordinator) exclude(m *member, silentFor time.Duration) {
	rec := protocol.Record{Kind: protocol.KindExclude, Participants: []string{m.Name}}
	if err := c.cfg.Log.Append(rec); err != nil {
		if c.ctx.Err() == nil {
			c.cfg.Fatal(err)
		}
		return
	}
	m.excluded.Store(true)
	c.setWriteSet()
	c.membership.Add(1)
	c.log.Warn("participant excluded from the write set: writes go on without it; it must catch up before it serves again",
		"participant", m.Name, "silent_for", silentFor.Round(time.Millisecond), "write_set", c.writeSet.Load().names)
	c.cfg.Observer.Membership(m.Name, StateExcluded)
	c.txs.Range(func(_, v any) bool {
		v.(*tx).step(protocol.Event{Kind: protocol.EvExcluded, From: m.Name})
		return true
	})
}
