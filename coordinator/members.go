package coordinator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twopc/twopc/protocol"
)

// This file is who the participants are: those configured, plus those
// an operator added (AddMember), minus those removed (RemoveMember),
// each change a durable log record (join, remove) before it takes
// effect, so that a restarted coordinator sees the same members.

// roster is every participant, in the order configured then added.
type roster struct {
	members []*member
	byName  map[string]*member
	removed map[string]bool // taken out for good: nobody waits for them
}

// with returns a copy of r with m added.
func (r *roster) with(m *member) *roster {
	n := &roster{members: append(r.members[:len(r.members):len(r.members)], m), byName: maps.Clone(r.byName), removed: maps.Clone(r.removed)}
	n.byName[m.Name] = m
	delete(n.removed, m.Name)
	return n
}

// without returns a copy of r without the participant named name.
func (r *roster) without(name string) *roster {
	n := &roster{byName: maps.Clone(r.byName), removed: maps.Clone(r.removed)}
	if n.removed == nil {
		n.removed = map[string]bool{}
	}
	for _, m := range r.members {
		if m.Name != name {
			n.members = append(n.members, m)
		}
	}
	delete(n.byName, name)
	n.removed[name] = true
	return n
}

func (r *roster) names() []string {
	out := make([]string, len(r.members))
	for i, m := range r.members {
		out[i] = m.Name
	}
	return out
}

// restoreRoster builds the members a coordinator starts with: those
// configured, without those the log says were removed, plus those it
// says were added.
func (c *Coordinator) restoreRoster() (*roster, error) {
	cfg := &c.cfg
	r := &roster{byName: map[string]*member{}, removed: map[string]bool{}}
	add := func(m Member) error {
		if err := checkName(m.Name); err != nil || r.byName[m.Name] != nil {
			return fmt.Errorf("coordinator: participant name %q empty, repeated, or with a space or comma", m.Name)
		}
		mb := c.newMember(m)
		mb.excluded.Store(slices.Contains(cfg.Excluded, m.Name))
		mb.lastOK.Store(time.Now().UnixNano())
		r = r.with(mb)
		return nil
	}
	for _, m := range cfg.Members {
		if slices.Contains(cfg.Removed, m.Name) {
			c.log.Warn("participant configured, but removed by an operator (twopc members remove): left out; twopc members add brings it back",
				"participant", m.Name)
			continue
		}
		if err := add(m); err != nil {
			return nil, err
		}
	}
	for _, j := range cfg.Joined {
		if m := r.byName[j.Name]; m != nil {
			if m.URL != j.URL {
				c.log.Warn("participant added by an operator at one URL and configured at another: using the configured one",
					"participant", j.Name, "added", j.URL, "configured", m.URL)
			}
			continue
		}
		if cfg.Dial == nil {
			return nil, fmt.Errorf("coordinator: the log names participant %s, added at %s, and this coordinator cannot dial it", j.Name, j.URL)
		}
		p, err := cfg.Dial(j.URL)
		if err != nil {
			return nil, fmt.Errorf("coordinator: participant %s, added at %s: %w", j.Name, j.URL, err)
		}
		if err := add(Member{Name: j.Name, URL: j.URL, Participant: p}); err != nil {
			return nil, err
		}
	}
	for _, name := range cfg.Removed {
		r.removed[name] = true
	}
	return r, nil
}

// preparesWatcher is a participant transport that can say when a
// request carrying prepares leaves (peer.Client).
type preparesWatcher interface{ OnPrepares(func()) }

// newMember wraps m. Its prepares going out end the linger of the
// STAGED records queued so far (protocol.Start queues them lazily), so
// that, under load, one fsync serves every transaction of a request and
// overlaps its round trip, instead of each burst of arrivals starting
// fsyncs of its own.
func (c *Coordinator) newMember(m Member) *member {
	if w, ok := m.Participant.(preparesWatcher); ok {
		w.OnPrepares(c.cfg.Log.Flush)
	}
	return &member{Member: m}
}

// checkName accepts what a log record can carry as a participant name.
func checkName(name string) error {
	if name == "" || strings.ContainsAny(name, " ,\t\n\r") {
		return fmt.Errorf("participant name %q: empty, or with a space or comma", name)
	}
	return nil
}

// minParticipants is the fewest participants the write set keeps:
// Config.MinParticipants, or a majority of the members now.
func (c *Coordinator) minParticipants() int {
	if c.cfg.MinParticipants > 0 {
		return c.cfg.MinParticipants
	}
	return len(c.roster.Load().members)/2 + 1
}

// ErrMembership is a membership change that cannot be made as asked.
var ErrMembership = errors.New("coordinator: membership")

// AddMember adds the participant name, served at url. Its join record is
// durable when AddMember returns; it starts excluded, and joins the write
// set once it has caught up (catchup.go), which begins at once.
func (c *Coordinator) AddMember(ctx context.Context, name, url string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("%w: %w", ErrMembership, err)
	}
	if url == "" || strings.ContainsFunc(url, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("%w: URL %q: empty, or with a space or control character", ErrMembership, url)
	}
	if c.cfg.Dial == nil {
		return fmt.Errorf("%w: this coordinator cannot reach new participants (no Dial)", ErrMembership)
	}
	c.membersMu.Lock()
	defer c.membersMu.Unlock()
	r := c.roster.Load()
	if r.byName[name] != nil {
		return fmt.Errorf("%w: %s is already a participant (remove it first to replace it)", ErrMembership, name)
	}
	if len(r.members)+1 > protocol.MaxParticipants {
		return fmt.Errorf("%w: at most %d participants", ErrMembership, protocol.MaxParticipants)
	}
	p, err := c.cfg.Dial(url)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMembership, url, err)
	}
	if err := c.cfg.Log.Append(protocol.Record{Kind: protocol.KindJoin, Participants: []string{name}, URL: url}); err != nil {
		c.logFailedMembership(err)
		return err
	}
	m := c.newMember(Member{Name: name, URL: url, Participant: p})
	m.excluded.Store(true)
	m.lastOK.Store(time.Now().UnixNano())
	c.roster.Store(r.with(m))
	c.membership.Add(1)
	c.log.Info("participant added: it catches up, then joins the write set", "participant", name, "url", url)
	c.cfg.Observer.Membership(name, StateExcluded)
	return nil
}

// RemoveMember takes the participant name out for good: its remove
// record is durable when RemoveMember returns, and from then on no
// transaction waits for it. A participant in the write set is removed
// only if the write set keeps MinParticipants without it.
func (c *Coordinator) RemoveMember(ctx context.Context, name string) error {
	c.membersMu.Lock()
	defer c.membersMu.Unlock()
	r := c.roster.Load()
	m := r.byName[name]
	if m == nil {
		return fmt.Errorf("%w: %s is not a participant", ErrMembership, name)
	}
	if len(r.members) == 1 {
		return fmt.Errorf("%w: %s is the last participant", ErrMembership, name)
	}
	left := len(c.writeSet.Load().names)
	if !m.excluded.Load() {
		left--
	}
	need := c.cfg.MinParticipants
	if need <= 0 {
		need = (len(r.members)-1)/2 + 1
	}
	if left < need {
		return fmt.Errorf("%w: without %s the write set would have %d participants, fewer than the %d it needs; add or bring back another first",
			ErrMembership, name, left, need)
	}
	if err := c.cfg.Log.Append(protocol.Record{Kind: protocol.KindRemove, Participants: []string{name}}); err != nil {
		c.logFailedMembership(err)
		return err
	}
	m.removed.Store(true)
	m.excluded.Store(true)
	c.roster.Store(r.without(name))
	c.setWriteSet()
	c.membership.Add(1)
	c.log.Warn("participant removed for good", "participant", name, "write_set", c.writeSet.Load().names)
	c.cfg.Observer.Membership(name, StateRemoved)
	c.txs.Range(func(_, v any) bool {
		v.(*tx).step(protocol.Event{Kind: protocol.EvExcluded, From: name})
		return true
	})
	return nil
}

// logFailedMembership: a membership record may or may not be on disk;
// like any decision whose record failed, the process must restart.
func (c *Coordinator) logFailedMembership(err error) {
	if c.ctx.Err() == nil {
		c.cfg.Fatal(err)
	}
}
