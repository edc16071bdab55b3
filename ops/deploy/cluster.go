package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Cluster is a deployed twopc cluster driven over SSH: drill.Cluster for
// hosts of an inventory. It targets processes Deploy started; Close leaves
// them running (it only closes the SSH connections).
//
// Its processes are named as the coordinator names them: "coordinator",
// and each participant by its host's name; with several coordinators,
// each is "coordinator-HOST" (Coordinator is the first of them). A
// coordinator's URL is its public one (listen address, or the host's
// address for 0.0.0.0): the drill's load goes there directly, so the
// operator's machine must reach that port. The participants' URLs are local proxies that tunnel through
// SSH and add the peer token.
type Cluster struct {
	inv   *Inventory
	token string
	// clientToken is what the coordinator wants from clients ("" for
	// none); the drill's coordinator calls must present it.
	clientToken string
	tls         *clusterTLS // nil without TLS
	coords      []*target   // in inventory order
	parts       []*target
	proxies     map[string]*peerProxy // by participant name
	mu          sync.Mutex
	killed      map[*target]bool // killed by Kill and not restarted: not a finding
	closeMu     sync.Once
	conns       []*Conn
}

// target is one process: a role on a host, with the host's connection.
type target struct {
	conn    *Conn
	role    string
	systemd bool
	name    string // as the drill names it
}

func (t *target) String() string { return t.role + " on " + t.conn.Host.Name }

// OpenCluster connects to every host of inv (in parallel; any failure is
// an error naming the hosts) and returns the cluster.
func OpenCluster(ctx context.Context, inv *Inventory) (*Cluster, error) {
	token, err := inv.PeerToken(false)
	if err != nil {
		return nil, err
	}
	clientToken, err := inv.ClientToken()
	if err != nil {
		return nil, err
	}
	ct, err := inv.loadTLS()
	if err != nil {
		return nil, err
	}
	conns := make([]*Conn, len(inv.Hosts))
	systemd := make([]bool, len(inv.Hosts))
	errs := make([]error, len(inv.Hosts))
	var wg sync.WaitGroup
	for i, h := range inv.Hosts {
		wg.Go(func() {
			c, err := Dial(ctx, h, inv.KnownHosts)
			if err != nil {
				errs[i] = err
				return
			}
			conns[i] = c
			systemd[i], errs[i] = c.serviceManager(ctx)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("host %s: %w", h.Name, errs[i])
			}
		})
	}
	wg.Wait()
	cl := &Cluster{inv: inv, token: token, clientToken: clientToken, tls: ct, killed: map[*target]bool{}, proxies: map[string]*peerProxy{}}
	for i, c := range conns {
		if c == nil {
			continue
		}
		cl.conns = append(cl.conns, c)
		if c.Host.Has(RoleCoordinator) {
			name := RoleCoordinator
			if inv.Several() {
				name += "-" + c.Host.Name
			}
			cl.coords = append(cl.coords, &target{c, RoleCoordinator, systemd[i], name})
		}
		if c.Host.Has(RoleParticipant) {
			cl.parts = append(cl.parts, &target{c, RoleParticipant, systemd[i], c.Host.Name})
		}
	}
	if err := errors.Join(errs...); err != nil {
		cl.Close()
		return nil, err
	}
	for _, p := range cl.parts {
		px, err := newPeerProxy(p.conn, ct, token)
		if err != nil {
			cl.Close()
			return nil, err
		}
		cl.proxies[p.conn.Host.Name] = px
	}
	return cl, nil
}

// Coordinator is the (first) coordinator's name.
func (cl *Cluster) Coordinator() string { return cl.coords[0].name }

// Coordinators are the coordinators' names, in inventory order.
func (cl *Cluster) Coordinators() []string {
	var out []string
	for _, t := range cl.coords {
		out = append(out, t.name)
	}
	return out
}

// Participants are the participants' host names, in inventory order.
func (cl *Cluster) Participants() []string {
	var out []string
	for _, p := range cl.parts {
		out = append(out, p.conn.Host.Name)
	}
	return out
}

// URL is a coordinator's public URL, or a participant's local proxy.
func (cl *Cluster) URL(name string) string {
	for _, t := range cl.coords {
		if t.name == name {
			return t.conn.Host.URL(RoleCoordinator)
		}
	}
	if px := cl.proxies[name]; px != nil {
		return px.url
	}
	return ""
}

// CoordinatorHTTP is the HTTP client for calls to the coordinator: it
// presents the client token, if the coordinator wants one, and trusts
// only the inventory's CA when the cluster runs TLS.
func (cl *Cluster) CoordinatorHTTP() *http.Client { return cl.tls.httpClient(cl.clientToken) }

// Hosts describes what the cluster runs where, for the drill's warning:
// "coordinator on db1; participants db1, db2, db3".
func (cl *Cluster) Hosts() string {
	var on []string
	for _, t := range cl.coords {
		on = append(on, t.conn.Host.Name)
	}
	what := "coordinator on "
	if len(on) > 1 {
		what = "coordinators on "
	}
	return fmt.Sprintf("%s%s; participants %s", what, strings.Join(on, ", "), strings.Join(cl.Participants(), ", "))
}

func (cl *Cluster) target(name string) (*target, error) {
	for _, t := range append(slices.Clone(cl.coords), cl.parts...) {
		if t.name == name {
			return t, nil
		}
	}
	return nil, fmt.Errorf("deploy: no process %q: want a coordinator (%s) or a participant (%s)", name, strings.Join(cl.Coordinators(), ", "), strings.Join(cl.Participants(), ", "))
}

// Kill sends SIGKILL and returns once the process is gone. Its
// supervisor (systemd's unit, or twopc supervise) is then stopped too, so
// that it does not restart the process behind the drill's back (Restart
// does).
func (cl *Cluster) Kill(ctx context.Context, name string) error {
	t, err := cl.target(name)
	if err != nil {
		return err
	}
	h := t.conn.Host
	var script string
	if t.systemd {
		u := shQuote(unitName(h, t.role))
		script = fmt.Sprintf("systemctl kill --kill-who=main -s SIGKILL %s && systemctl stop %s", u, u)
	} else {
		script = shLib + fmt.Sprintf(`gone() { # pid tag: wait up to 10 s for it to be gone
  i=0; while alive "$1" "$2" && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
  ! alive "$1" "$2" || { echo "$2 still alive 10s after kill" >&2; exit 1; }
}
pid=$(cat %s 2>/dev/null || true); tag=%s
alive "$pid" "$tag" || { echo "not running" >&2; exit 1; }
kill -KILL "$pid"; gone "$pid" "$tag"
spid=$(cat %s 2>/dev/null || true); stag=%s
if alive "$spid" "$stag"; then kill -TERM "$spid"; gone "$spid" "$stag"; fi
rm -f %s
`, shQuote(pidPath(h, t.role)), shQuote(binPath(h)+" "+t.role), shQuote(supervisorPidPath(h, t.role)), shQuote(supervisorTag(h, t.role)),
			shQuote(supervisorPidPath(h, t.role)))
	}
	if _, err := t.conn.Run(ctx, script, nil); err != nil {
		return fmt.Errorf("kill %v: %w", t, err)
	}
	cl.mu.Lock()
	cl.killed[t] = true
	cl.mu.Unlock()
	return nil
}

// Restart starts a process that is not running and waits until it serves.
func (cl *Cluster) Restart(ctx context.Context, name string) error {
	t, err := cl.target(name)
	if err != nil {
		return err
	}
	st, err := t.conn.state(ctx, t.role, t.systemd)
	if err != nil {
		return err
	}
	if st.Running {
		return fmt.Errorf("restart %v: it is running (pid %d)", t, st.PID)
	}
	if _, err := t.conn.start(ctx, t.role, t.systemd); err != nil {
		return err
	}
	hc := t.conn.roleClient(t.role, cl.tls, callerToken(t.role, cl.token, cl.clientToken))
	if err := t.conn.waitReady(ctx, t.role, t.systemd, hc); err != nil {
		return err
	}
	cl.mu.Lock()
	delete(cl.killed, t)
	cl.mu.Unlock()
	return nil
}

// LinkFault is not supported: the drill reaches a deployed cluster's
// hosts over SSH, and puts nothing on the network between them (a fault
// proxy there would have to be deployed in the coordinator's path).
func (cl *Cluster) LinkFault(context.Context, string, string, string, string, time.Duration) (func(), error) {
	return nil, fmt.Errorf("deploy: no fault proxies between the deployed hosts: %w", errors.ErrUnsupported)
}

// Wipe is not supported: deleting a live participant's data is an
// operator's decision, not a drill's.
func (cl *Cluster) Wipe(context.Context, string) error {
	return fmt.Errorf("deploy: a drill does not delete a deployed participant's data: %w", errors.ErrUnsupported)
}

func (cl *Cluster) Pause(ctx context.Context, name string) error {
	return cl.signal(ctx, name, "STOP")
}

func (cl *Cluster) Resume(ctx context.Context, name string) error {
	return cl.signal(ctx, name, "CONT")
}

func (cl *Cluster) signal(ctx context.Context, name, sig string) error {
	t, err := cl.target(name)
	if err != nil {
		return err
	}
	return t.conn.signal(ctx, t.role, t.systemd, sig)
}

// Healthy checks every process runs and is not stopped by SIGSTOP.
func (cl *Cluster) Healthy(ctx context.Context) error {
	var errs []error
	for _, t := range append(slices.Clone(cl.coords), cl.parts...) {
		st, err := t.conn.state(ctx, t.role, t.systemd)
		switch {
		case err != nil:
			errs = append(errs, err)
		case !st.Running:
			cl.mu.Lock()
			why := "exited without being killed by the drill"
			if cl.killed[t] {
				why = "killed"
			}
			cl.mu.Unlock()
			errs = append(errs, fmt.Errorf("%v is not running (%s, %s)", t, st.Detail, why))
		default:
			res, err := t.conn.Run(ctx, fmt.Sprintf("sed 's/.*) //' /proc/%d/stat | cut -c1", st.PID), nil)
			if err == nil && strings.TrimSpace(string(res.Stdout)) == "T" {
				errs = append(errs, fmt.Errorf("%v is paused (SIGSTOP)", t))
			}
		}
	}
	return errors.Join(errs...)
}

// ReadTxlog returns the coordinator's log. With several, it is the copy
// of the raft log, among the coordinators that answer, that knows the
// most (the highest last index): the leader's, at rest, whichever name
// the drill gives.
func (cl *Cluster) ReadTxlog(ctx context.Context, _ string) ([]byte, error) {
	var best []byte
	var bestLast uint64
	var errs []error
	for _, t := range cl.coords {
		h := t.conn.Host
		res, err := t.conn.Run(ctx, "cat "+shQuote(txlogPath(h)), nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h.Name, err))
			continue
		}
		if len(cl.coords) == 1 {
			return res.Stdout, nil
		}
		lc, err := readLogCopy(h.Name+":"+txlogPath(h), res.Stdout)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if best == nil || lc.last > bestLast {
			best, bestLast = res.Stdout, lc.last
		}
	}
	if best == nil {
		return nil, errors.Join(errs...)
	}
	return best, nil
}

// Close closes the proxies and the SSH connections; the processes keep
// running.
func (cl *Cluster) Close() error {
	cl.closeMu.Do(func() {
		for _, p := range cl.proxies {
			p.Close()
		}
		for _, c := range cl.conns {
			c.Close()
		}
	})
	return nil
}
