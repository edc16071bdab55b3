package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twopc/twopc/internal/rpc"
)

// hostTimeout bounds all the work on one host in one command; a host that
// hangs is reported as failed when it runs out.
const hostTimeout = 5 * time.Minute

// readyTimeout bounds the wait for a started process to answer.
const readyTimeout = 30 * time.Second

// Ops runs operator commands against the hosts of an inventory.
type Ops struct {
	Inv *Inventory
	Out io.Writer // one result line per host, then a summary

	token       string      // the peer token, once loaded
	clientToken string      // the client token, "" if none
	tls         *clusterTLS // nil without TLS
	members     membership  // read from the coordinator's host by a deploy
}

// loadCredentials loads the peer token (creating it if create), the
// client token and the TLS files; call it before working on hosts in
// parallel, which read them, so that a bad file stops the work before any
// host is touched.
func (o *Ops) loadCredentials(create bool) error {
	tok, err := o.Inv.PeerToken(create)
	if err != nil {
		return err
	}
	o.token = tok
	if o.clientToken, err = o.Inv.ClientToken(); err != nil {
		return err
	}
	o.tls, err = o.Inv.loadTLS()
	return err
}

// callerToken is what a caller of role must present.
func callerToken(role, peer, client string) string {
	if role == RoleCoordinator {
		return client // the coordinator's public methods want the client token
	}
	return peer
}

// hostResult is the outcome of a command on one host.
type hostResult struct {
	host Host
	msg  string
	err  error
	took time.Duration
}

// each runs fn on every host in parallel, each with its own SSH connection
// and timeout, then prints one line per host in inventory order and a
// summary. Any failed host makes the returned error non-nil: a failure
// never hides behind the others' success.
func (o *Ops) each(ctx context.Context, verb string, hosts []Host, fn func(context.Context, *Conn) (string, error)) error {
	results := make([]hostResult, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, hostTimeout)
			defer cancel()
			results[i] = hostResult{host: h}
			start := time.Now()
			defer func() { results[i].took = time.Since(start) }()
			c, err := Dial(ctx, h, o.Inv.KnownHosts)
			if err != nil {
				results[i].err = err
				return
			}
			defer c.Close()
			results[i].msg, results[i].err = fn(ctx, c)
		})
	}
	wg.Wait()
	var failed []string
	for _, r := range results {
		took := r.took.Round(100 * time.Millisecond)
		if r.err != nil {
			failed = append(failed, r.host.Name)
			fmt.Fprintf(o.Out, "FAIL  %-12s %s [%v]\n", r.host.Name, indent(r.err.Error()), took)
		} else {
			fmt.Fprintf(o.Out, "ok    %-12s %s [%v]\n", r.host.Name, r.msg, took)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(o.Out, "%s: %d of %d host(s) FAILED: %s\n", verb, len(failed), len(hosts), strings.Join(failed, ", "))
		return fmt.Errorf("%s failed on %s", verb, strings.Join(failed, ", "))
	}
	fmt.Fprintf(o.Out, "%s: %d host(s) ok\n", verb, len(hosts))
	return nil
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n"+strings.Repeat(" ", 19)) }

// rolesOf lists h's roles, participants first: on one host, the
// participant should be up before the coordinator starts calling it.
func rolesOf(h Host) []string {
	var out []string
	for _, r := range []string{RoleParticipant, RoleCoordinator} {
		if h.Has(r) {
			out = append(out, r)
		}
	}
	return out
}

// Deploy installs binary and the generated config on the target's hosts
// and (re)starts what changed or is not running. Rerunning it with nothing
// changed leaves running processes alone.
func (o *Ops) Deploy(ctx context.Context, target, binary string) error {
	hosts, err := o.Inv.Select(target)
	if err != nil {
		return err
	}
	bin, err := readBinary(binary)
	if err != nil {
		return err
	}
	if err := o.loadCredentials(true); err != nil {
		return err
	}
	if err := o.readMembership(ctx); err != nil {
		return err
	}
	return o.each(ctx, "deploy", hosts, func(ctx context.Context, c *Conn) (string, error) {
		return o.deployHost(ctx, c, bin)
	})
}

// upload is a small file the deploy installs beside the binary.
type upload struct {
	data []byte
	mode uint32
	what string // for the deploy's note: "tokens", "TLS files"
}

// uploads are the token and TLS files h needs, by remote path.
func (o *Ops) uploads(h Host) map[string]upload {
	m := map[string]upload{tokenPath(h): {[]byte(o.token + "\n"), 0o600, "tokens"}}
	if h.Has(RoleCoordinator) && o.clientToken != "" {
		m[clientTokenPath(h)] = upload{[]byte(o.clientToken + "\n"), 0o600, "tokens"}
	}
	maps.Copy(m, o.tls.uploads(h))
	return m
}

// deployedRoles are the roles deploy runs on h: the inventory's, less
// a participant the coordinator's log says was removed (members.go) and
// a coordinator that is not in the group (group.go). A member of the
// group whose log is gone is an error.
func (o *Ops) deployedRoles(h Host) ([]string, error) {
	var err error
	roles := slices.DeleteFunc(rolesOf(h), func(r string) bool {
		if r == RoleParticipant {
			return o.members.removed[h.Name]
		}
		why, e := o.members.coordinatorOff(o.Inv, h)
		err = e
		return why != "" || e != nil
	})
	return roles, err
}

// whyOff says why role, which h has in the inventory, is not deployed.
func (o *Ops) whyOff(h Host, role string) string {
	if role == RoleParticipant {
		return fmt.Sprintf("%s was removed from the cluster: take it out of the inventory", h.Name)
	}
	why, _ := o.members.coordinatorOff(o.Inv, h)
	return why
}

func (o *Ops) deployHost(ctx context.Context, c *Conn, bin binaryFile) (string, error) {
	h := c.Host
	roles, err := o.deployedRoles(h)
	if err != nil {
		return "", err
	}
	uploads := o.uploads(h)
	files := []string{binPath(h)}
	for f := range uploads {
		files = append(files, f)
	}
	for _, r := range roles {
		files = append(files, argsPath(h, r))
	}
	p, err := c.probe(ctx, files...)
	if err != nil {
		return "", err
	}
	if p.arch != bin.arch {
		return "", fmt.Errorf("host is %s, the binary is built for %s", p.arch, bin.arch)
	}
	systemd, err := useSystemd(h, p)
	if err != nil {
		return "", err
	}
	var notes []string
	binChanged := !p.current(binPath(h), bin.sum, 0o700)
	if binChanged {
		if err := c.put(ctx, binPath(h), 0o700, bin.data); err != nil {
			return "", err
		}
		notes = append(notes, "binary updated")
	}
	// A process reads its tokens and certificate at start: a new one
	// takes effect by a restart.
	installed := map[string]bool{}
	for f, u := range uploads {
		if p.current(f, sha256hex(u.data), u.mode) {
			continue
		}
		if err := c.put(ctx, f, u.mode, u.data); err != nil {
			return "", err
		}
		installed[u.what] = true
	}
	for _, what := range slices.Sorted(maps.Keys(installed)) {
		notes = append(notes, what+" installed")
	}
	for _, r := range roles {
		argsChanged, err := o.installConfig(ctx, c, r, systemd, p)
		if err != nil {
			return "", err
		}
		msg, err := o.ensureRunning(ctx, c, r, systemd, binChanged || len(installed) > 0 || argsChanged)
		if err != nil {
			return "", err
		}
		notes = append(notes, msg+o.membershipNote(h, r))
	}
	// A role taken off the host, in the inventory or by the coordinator's
	// log, must not keep running.
	for _, r := range []string{RoleParticipant, RoleCoordinator} {
		if slices.Contains(roles, r) {
			continue
		}
		why := "no longer in the inventory"
		if h.Has(r) {
			why = o.whyOff(h, r)
		} else if r == RoleCoordinator && o.Inv.Several() && o.members.group.member(h.Name) {
			// Stopping it would take a member from the group behind its back.
			notes = append(notes, fmt.Sprintf("coordinator left as it is: %s is still in the coordinator group (mage coordinator:remove %s takes it out)", h.Name, h.Name))
			continue
		}
		was, err := c.retire(ctx, r, systemd)
		switch {
		case err != nil:
			return "", err
		case was:
			notes = append(notes, fmt.Sprintf("%s stopped (%s)", r, why))
		case h.Has(r):
			notes = append(notes, fmt.Sprintf("%s not started (%s)", r, why))
		}
	}
	how := "background"
	if systemd {
		how = "systemd"
	}
	return fmt.Sprintf("%s (%s, %s)", strings.Join(notes, "; "), bin.version, how), nil
}

// installConfig installs role's generated config on c's host, given
// what probe p found there: its args file and, under systemd, its unit.
// It reports whether the args changed, which takes a restart to apply.
func (o *Ops) installConfig(ctx context.Context, c *Conn, role string, systemd bool, p probe) (bool, error) {
	h := c.Host
	args := argsFile(o.Inv.args(h, role, o.members))
	changed := !p.current(argsPath(h, role), sha256hex(args), 0o600)
	if changed {
		if err := c.put(ctx, argsPath(h, role), 0o600, args); err != nil {
			return false, err
		}
	}
	if systemd {
		if err := c.put(ctx, "/etc/systemd/system/"+unitName(h, role), 0o644, o.Inv.unitFile(h, role, o.members)); err != nil {
			return false, err
		}
		if _, err := c.Run(ctx, "systemctl daemon-reload && systemctl enable --quiet "+shQuote(unitName(h, role)), nil); err != nil {
			return false, fmt.Errorf("systemctl enable: %w", err)
		}
	}
	return changed, nil
}

// membershipNote tells, after role's line on h, what the coordinator's
// membership makes of the inventory: who --participants leaves out, or
// that this participant is not a member yet.
func (o *Ops) membershipNote(h Host, role string) string {
	if role == RoleParticipant {
		if why := o.members.leftOut(h.Name); why != "" {
			return fmt.Sprintf(" (%s: mage participant:replace OLD %s, or twopc members add, adds it)", why, h.Name)
		}
		return ""
	}
	var out []string
	if o.Inv.Several() {
		out = append(out, "one of "+memberNames(o.Inv.groupOf(o.members)))
	}
	for _, p := range o.Inv.Participants() {
		if why := o.members.leftOut(p.Name); why != "" {
			out = append(out, p.Name+" ("+why+")")
		}
	}
	if len(out) == 0 {
		return ""
	}
	if o.Inv.Several() {
		if len(out) == 1 {
			return " (" + out[0] + ")"
		}
		return " (" + out[0] + "); --participants leaves out " + strings.Join(out[1:], ", ")
	}
	return "; --participants leaves out " + strings.Join(out, ", ")
}

// reconfigure installs role's config, as o.members now makes it, on
// each of hosts, without a restart: after a membership change the
// running processes know it already (from the log), and the config is
// for their next start. It returns the hosts whose config changed.
func (o *Ops) reconfigure(ctx context.Context, hosts []Host, role string) ([]string, error) {
	var changed []string
	for _, h := range hosts {
		ch, err := o.reconfigureHost(ctx, h, []string{role})
		if err != nil {
			return changed, fmt.Errorf("%s's %s config: %w", h.Name, role, err)
		}
		if len(ch) > 0 {
			changed = append(changed, h.Name)
		}
	}
	return changed, nil
}

// reconfigureHost installs the config of each of roles on h, as
// reconfigure does, through one connection; it returns the roles whose
// config changed.
func (o *Ops) reconfigureHost(ctx context.Context, h Host, roles []string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, hostTimeout)
	defer cancel()
	c, err := Dial(ctx, h, o.Inv.KnownHosts)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var files []string
	for _, r := range roles {
		files = append(files, argsPath(h, r))
	}
	p, err := c.probe(ctx, files...)
	if err != nil {
		return nil, err
	}
	systemd, err := useSystemd(h, p)
	if err != nil {
		return nil, err
	}
	var changed []string
	for _, r := range roles {
		ch, err := o.installConfig(ctx, c, r, systemd, p)
		if err != nil {
			return changed, err
		}
		if ch {
			changed = append(changed, r)
		}
	}
	return changed, nil
}

// ensureRunning restarts role if its binary or config changed, starts it
// if it is not running, and waits until it answers.
func (o *Ops) ensureRunning(ctx context.Context, c *Conn, role string, systemd, changed bool) (string, error) {
	st, err := c.state(ctx, role, systemd)
	if err != nil {
		return "", err
	}
	verb := "unchanged, running"
	switch {
	case st.Running && changed:
		if _, err := c.stop(ctx, role, systemd); err != nil {
			return "", err
		}
		verb = "restarted"
	case !st.Running:
		verb = "started"
	}
	pid, err := c.start(ctx, role, systemd)
	if err != nil {
		return "", err
	}
	// The credentials were loaded before the hosts were worked on in parallel.
	if err := c.waitReady(ctx, role, systemd, c.roleClient(role, o.tls, callerToken(role, o.token, o.clientToken))); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s %s pid %d", role, verb, pid), nil
}

// waitReady polls role's XML-RPC endpoint through the SSH connection, with
// hc (from roleClient), until it answers, the process exits, or
// readyTimeout passes.
func (c *Conn) waitReady(ctx context.Context, role string, systemd bool, hc *http.Client) error {
	cl := rpc.NewClient(c.Host.LocalURL(role), hc)
	deadline := time.Now().Add(readyTimeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := cl.Call(cctx, "system.listMethods")
		cancel()
		// Fault 3 is an answer too: one of several coordinators says
		// it while no leader is known (an election, or not yet added to
		// the group), and it serves all the same.
		var f *rpc.Fault
		if err == nil || errors.As(err, &f) && f.Code == rpc.Unavailable {
			return nil
		}
		if st, serr := c.state(ctx, role, systemd); serr == nil && !st.Running {
			return fmt.Errorf("%s exited during start (%s)%s", role, st.Detail, c.tail(ctx, role, systemd, 5))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not answering on %s after %v: %v%s", role, c.Host.LocalURL(role), readyTimeout, err, c.tail(ctx, role, systemd, 5))
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// serviceManager tells whether the host runs twopc under systemd.
func (c *Conn) serviceManager(ctx context.Context) (bool, error) {
	p, err := c.probe(ctx)
	if err != nil {
		return false, err
	}
	return useSystemd(c.Host, p)
}

// Start starts the target's processes that are not running.
func (o *Ops) Start(ctx context.Context, target string) error {
	if err := o.loadCredentials(false); err != nil {
		return err
	}
	return o.perRole(ctx, "start", target, func(ctx context.Context, c *Conn, role string, systemd bool) (string, error) {
		return o.ensureRunning(ctx, c, role, systemd, false)
	})
}

// Stop stops the target's processes: SIGTERM, then SIGKILL after 15 s.
func (o *Ops) Stop(ctx context.Context, target string) error {
	return o.perRole(ctx, "stop", target, func(ctx context.Context, c *Conn, role string, systemd bool) (string, error) {
		was, err := c.stop(ctx, role, systemd)
		if !was {
			return role + " was not running", err
		}
		return role + " stopped", err
	})
}

// Restart stops then starts the target's processes.
func (o *Ops) Restart(ctx context.Context, target string) error {
	if err := o.loadCredentials(false); err != nil {
		return err
	}
	return o.perRole(ctx, "restart", target, func(ctx context.Context, c *Conn, role string, systemd bool) (string, error) {
		if _, err := c.stop(ctx, role, systemd); err != nil {
			return "", err
		}
		return o.ensureRunning(ctx, c, role, systemd, false)
	})
}

// Logs prints the last lines of each of the target's process logs.
func (o *Ops) Logs(ctx context.Context, target string, lines int) error {
	var mu sync.Mutex
	return o.perRole(ctx, "logs", target, func(ctx context.Context, c *Conn, role string, systemd bool) (string, error) {
		out, err := c.logs(ctx, role, systemd, lines)
		if err != nil {
			return "", err
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(o.Out, "==> %s %s <==\n%s\n", c.Host.Name, role, strings.TrimRight(string(out), "\n"))
		return fmt.Sprintf("%s: %d line(s)", role, strings.Count(string(out), "\n")), nil
	})
}

// perRole runs fn for each role of each target host (a role target picks
// that role only).
func (o *Ops) perRole(ctx context.Context, verb, target string, fn func(context.Context, *Conn, string, bool) (string, error)) error {
	hosts, err := o.Inv.Select(target)
	if err != nil {
		return err
	}
	return o.each(ctx, verb, hosts, func(ctx context.Context, c *Conn) (string, error) {
		systemd, err := c.serviceManager(ctx)
		if err != nil {
			return "", err
		}
		var notes []string
		var errs []error
		only := target // a role, or HOST/ROLE's role
		if _, role, ok := strings.Cut(target, "/"); ok {
			only = role
		}
		for _, r := range rolesOf(c.Host) {
			if (only == RoleCoordinator || only == RoleParticipant) && r != only {
				continue
			}
			msg, err := fn(ctx, c, r, systemd)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			notes = append(notes, msg)
		}
		return strings.Join(notes, "; "), errors.Join(errs...)
	})
}
