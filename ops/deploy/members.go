package deploy

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

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
// A new cluster (no log yet) takes the inventory's participants as they are.

// membership is what the coordinator's host says about who the
// participants are.
type membership struct {
	started    bool            // the coordinator has a log: membership is its business now
	configured map[string]bool // the names in its installed --participants; nil: no args file
	joined     map[string]bool // added by an operator (join records)
	removed    map[string]bool // taken out for good (remove records)
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

// readMembership reads the coordinator's installed args and its log
// from its host: the log travels whole, as the drill's check reads it
// too; compaction keeps it small.
func readMembership(ctx context.Context, c *Conn) (membership, error) {
	h := c.Host
	m := membership{joined: map[string]bool{}, removed: map[string]bool{}}
	log, ok, err := c.readIfExists(ctx, txlogPath(h))
	if err != nil || !ok {
		return m, err
	}
	st, err := txlog.ScanBytes(h.Name+":"+txlogPath(h), log)
	if err != nil {
		return m, err
	}
	m.started = st.Epoch > 0
	for _, j := range st.Joined {
		m.joined[j.Name] = true
	}
	for _, r := range st.Removed {
		m.removed[r] = true
	}
	args, ok, err := c.readIfExists(ctx, argsPath(h, RoleCoordinator))
	if err != nil || !ok {
		return m, err
	}
	m.configured = map[string]bool{}
	for _, name := range participantsArg(args) {
		m.configured[name] = true
	}
	return m, nil
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

// readMembership reads the membership from the coordinator's host, for
// a deploy.
func (o *Ops) readMembership(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, hostTimeout)
	defer cancel()
	h := o.Inv.Coordinator()
	fail := func(err error) error {
		return fmt.Errorf("deploy: reading who the participants are on the coordinator's host %s (the deploy needs it for --participants): %w", h.Name, err)
	}
	c, err := Dial(ctx, h, o.Inv.KnownHosts)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	if o.members, err = readMembership(ctx, c); err != nil {
		return fail(err)
	}
	return nil
}
