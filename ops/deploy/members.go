package deploy

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/twopc/twopc/consensus"
	"github.com/twopc/twopc/txlog"
)

// Who the participants are is the coordinator's business once it has
// started: its log keeps those an operator added (join records) and
// took out for good (remove records), and it started with the names its
// last --participants gave it. The inventory says where hosts are, and
// may lag behind: a host replaced (participant:replace) is still listed
// until the operator edits the file, and a new host is listed before it
// is added. So the deploy reads the coordinator's host first, and builds
// --participants from the inventory's participants that it admits:
//
//   - one the log says was removed is left out, and its own participant
//     is not started: an inventory still listing a replaced host does
//     not bring it back;
//   - once the coordinator has a log, one it never had (not in its
//     installed --participants, not joined) is left out too: a new host
//     with an empty database must be added (members.add) and catch up
//     before it serves reads, never be handed to a restarted coordinator
//     as a member of the write set.
//
// A new cluster (no log yet) takes the inventory's participants as they
// are. With several coordinators, each has its copy of the log: the one
// that knows the most committed records is read.

// membership is what the coordinator hosts say about who the
// participants are, and, with several coordinators, who the
// coordinators are (group.go).
type membership struct {
	started    bool            // the coordinator has a log: membership is its business now
	configured map[string]bool // the names in its installed --participants; nil: no args file
	joined     map[string]bool // added by an operator (join records)
	removed    map[string]bool // taken out for good (remove records)
	group      coordGroup
}

// leftOut says why the inventory's participant name is not in the
// coordinator's --participants, or "" if it is.
func (m membership) leftOut(name string) string {
	switch {
	case !m.started:
		return ""
	case m.removed[name]:
		return "removed from the cluster"
	case m.joined[name] || m.configured == nil || m.configured[name]:
		return ""
	}
	return "not added to the cluster yet"
}

// coordHost is what one coordinator host holds.
type coordHost struct {
	host    Host
	args    []byte   // its installed coordinator args; nil: none
	log     *logCopy // nil: no log
	list    []groupMember
	listErr error // coordinators.list did not answer (several only)
	err     error // the host could not be read
}

// logCopy is what one copy of the decision log says: a single
// coordinator's txlog, or one coordinator's copy of the raft log.
type logCopy struct {
	raft bool
	// last is the index of the raft log's last entry. The copy with the
	// highest knows the most: a membership change (members.remove) is
	// committed before it returns, but the commit index on disk lags
	// until the next entry, so the state read is every entry's (All).
	last uint64
	st   *txlog.State
}

// readLogCopy reads a log fetched from a host, of either kind.
func readLogCopy(name string, data []byte) (*logCopy, error) {
	if consensus.IsRaftLogBytes(data) {
		sc, err := consensus.ScanBytes(name, data)
		if err != nil {
			return nil, err
		}
		return &logCopy{raft: true, last: sc.Last, st: sc.All}, nil
	}
	st, err := txlog.ScanBytes(name, data)
	if err != nil {
		return nil, err
	}
	return &logCopy{st: st}, nil
}

// readCoordHost reads the coordinator's args and log on c's host: the
// log travels whole, as the drill's check reads it too; compaction
// keeps it small. With several coordinators it also asks the group who
// its members are.
func (o *Ops) readCoordHost(ctx context.Context, c *Conn) coordHost {
	h := c.Host
	r := coordHost{host: h}
	data, ok, err := c.readIfExists(ctx, txlogPath(h))
	if err != nil {
		r.err = err
		return r
	}
	if ok && len(data) > 0 {
		if r.log, r.err = readLogCopy(h.Name+":"+txlogPath(h), data); r.err != nil {
			return r
		}
	}
	args, ok, err := c.readIfExists(ctx, argsPath(h, RoleCoordinator))
	if err != nil {
		r.err = err
		return r
	}
	if ok {
		r.args = args
	}
	if o.Inv.Several() {
		r.list, r.listErr = c.listGroup(ctx, o.tls, o.clientToken)
	}
	return r
}

// membershipFrom makes one membership of what the coordinator hosts
// hold. The participants' comes from the log that knows the most (the
// highest last index); the group's from the first coordinator that
// answered coordinators.list, or else from the installed config.
func (inv *Inventory) membershipFrom(reads []coordHost) (membership, error) {
	m := membership{joined: map[string]bool{}, removed: map[string]bool{}}
	m.group.joining, m.group.hasLog = map[string]bool{}, map[string]bool{}
	several := inv.Several()
	var best *coordHost
	var unreachable []string
	for i := range reads {
		r := &reads[i]
		if r.err != nil {
			unreachable = append(unreachable, fmt.Sprintf("%s (%v)", r.host.Name, r.err))
			continue
		}
		if r.log != nil {
			switch {
			case several && !r.log.raft:
				return m, fmt.Errorf("%s holds a single coordinator's txlog (%s), and the inventory gives %d hosts the coordinator role: "+
					"a single coordinator does not become a group in place", r.host.Name, txlogPath(r.host), len(inv.Coordinators()))
			case !several && r.log.raft:
				return m, fmt.Errorf("%s holds its copy of a group's raft log (%s), and the inventory gives only it the coordinator role: "+
					"a group does not become a single coordinator in place", r.host.Name, txlogPath(r.host))
			}
			m.group.started = true
			m.group.hasLog[r.host.Name] = true
			if best == nil || r.log.last > best.log.last {
				best = r
			}
		}
		if slices.Contains(strings.Split(string(r.args), "\n"), "--join") {
			m.group.joining[r.host.Name] = true
		}
	}
	if len(unreachable) == len(reads) || (len(unreachable) > 0 && best == nil) {
		return m, fmt.Errorf("cannot read %s", strings.Join(unreachable, "; "))
	}
	if best != nil {
		m.started = best.log.st.Epoch > 0
		for _, j := range best.log.st.Joined {
			m.joined[j.Name] = true
		}
		for _, r := range best.log.st.Removed {
			m.removed[r] = true
		}
		if best.args != nil {
			m.configured = map[string]bool{}
			for _, name := range participantsArg(best.args) {
				m.configured[name] = true
			}
		}
	}
	if !several || !m.group.started {
		return m, nil
	}
	for _, r := range reads {
		if r.err == nil && r.listErr == nil {
			m.group.members = r.list
			return m, nil
		}
	}
	for _, r := range reads {
		if r.err == nil && r.args != nil {
			m.group.members = groupArg(r.args)
			return m, nil
		}
	}
	var why []string
	for _, r := range reads {
		if r.listErr != nil {
			why = append(why, r.listErr.Error())
		}
	}
	return m, fmt.Errorf("the group exists, but no coordinator says who its members are, and none has its config: %s", strings.Join(why, "; "))
}

// participantsArg returns the names in the --participants of an args
// file (argsFile), in order.
func participantsArg(args []byte) []string {
	lines := strings.Split(string(args), "\n")
	i := slices.Index(lines, "--participants")
	if i < 0 || i+1 >= len(lines) {
		return nil
	}
	var names []string
	for _, p := range strings.Split(lines[i+1], ",") {
		name, _, _ := strings.Cut(p, "=")
		names = append(names, name)
	}
	return names
}

// readIfExists returns file's content, and false if there is no such file.
func (c *Conn) readIfExists(ctx context.Context, file string) ([]byte, bool, error) {
	q := shQuote(file)
	res, err := c.Run(ctx, fmt.Sprintf("if [ -e %s ]; then echo yes; cat %s; else echo no; fi", q, q), nil)
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", file, err)
	}
	first, rest, _ := bytes.Cut(res.Stdout, []byte("\n"))
	return rest, string(first) == "yes", nil
}

// readMembership reads the membership from the coordinator hosts (in
// parallel), for a deploy; the credentials must be loaded.
func (o *Ops) readMembership(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, hostTimeout)
	defer cancel()
	hosts := o.Inv.Coordinators()
	reads := make([]coordHost, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			c, err := Dial(ctx, h, o.Inv.KnownHosts)
			if err != nil {
				reads[i] = coordHost{host: h, err: err}
				return
			}
			defer c.Close()
			reads[i] = o.readCoordHost(ctx, c)
		})
	}
	wg.Wait()
	m, err := o.Inv.membershipFrom(reads)
	if err != nil {
		return fmt.Errorf("deploy: reading who the participants and coordinators are on the coordinator hosts (the deploy needs it for the config): %w", err)
	}
	o.members = m
	return nil
}
