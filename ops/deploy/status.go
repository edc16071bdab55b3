package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/twopc/twopc/api"
	"github.com/twopc/twopc/coordinator"
)

// StatusRow is one process as status sees it.
type StatusRow struct {
	Host, Role, State, Version string
	PID                        int
	Restarts                   string // after crashes, since the deploy last started it: "0", "2 (last: killed by SIGKILL)"
	View                       string // the coordinator's view of it
	Err                        error  // the host could not be asked
}

// Status prints a table of every host's processes: state, pid, version
// and the service's own view (the coordinator's status: each
// participant's state, in-doubt count; with several coordinators, each
// one's role in the group, and the group's members and leader). It
// returns an error if a host cannot be reached or a process is not
// running and active (or, one of several coordinators, not a leader or
// follower of the group).
func (o *Ops) Status(ctx context.Context) error {
	var err error
	if o.clientToken, err = o.Inv.ClientToken(); err != nil {
		return err
	}
	if o.tls, err = o.Inv.loadTLS(); err != nil {
		return err
	}
	rows, coordView := o.collect(ctx)
	w := tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "HOST\tROLE\tPROCESS\tPID\tRESTARTS\tVERSION\tSERVICE VIEW")
	var bad []string
	for _, r := range rows {
		if r.Err != nil {
			fmt.Fprintf(w, "%s\t%s\tUNREACHABLE\t-\t-\t-\t%s\n", r.Host, r.Role, strings.ReplaceAll(r.Err.Error(), "\n", " "))
			bad = append(bad, r.Host)
			continue
		}
		pid := "-" // not running: no pid to show
		if r.PID > 0 {
			pid = strconv.Itoa(r.PID)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Host, r.Role, r.State, pid, r.Restarts, r.Version, r.View)
		if r.State != "active" || (r.Role == RoleParticipant && !strings.HasPrefix(r.View, "active")) ||
			(r.Role == RoleCoordinator && o.Inv.Several() && !strings.HasPrefix(r.View, "leader") && !strings.HasPrefix(r.View, "follower")) {
			bad = append(bad, r.Host+"/"+r.Role)
		}
	}
	w.Flush()
	fmt.Fprintln(o.Out, coordView)
	if len(bad) > 0 {
		return fmt.Errorf("status: not healthy: %s", strings.Join(bad, ", "))
	}
	return nil
}

// coordAnswer is what one coordinator said.
type coordAnswer struct {
	host    string
	view    *coordinator.Status // its status (a follower's is the leader's, forwarded)
	viewErr error
	list    []groupMember // with several: coordinators.list
	listErr error
}

// collect asks every host in parallel, and each coordinator for its
// view; the cluster's view comes from the first coordinator (in the
// inventory's order) that answers.
func (o *Ops) collect(ctx context.Context) ([]StatusRow, string) {
	hosts := o.Inv.Hosts
	perHost := make([][]StatusRow, len(hosts))
	answers := make([]*coordAnswer, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, hostTimeout)
			defer cancel()
			perHost[i], answers[i] = o.hostStatus(ctx, h)
		})
	}
	wg.Wait()
	var view *coordAnswer // the first that answered status
	var list []groupMember
	listed := false
	own := map[string]*coordAnswer{}
	var whyNot []string
	for _, a := range answers {
		if a == nil {
			continue
		}
		own[a.host] = a
		if a.viewErr == nil && view == nil {
			view = a
		}
		if a.viewErr != nil {
			whyNot = append(whyNot, a.viewErr.Error())
		}
		if a.listErr == nil && a.list != nil && !listed {
			list, listed = a.list, true
		}
	}
	several := o.Inv.Several()
	states := map[string]coordinator.ParticipantStatus{} // participant name -> its entry in the coordinator's view
	summary := "coordinator view: unavailable"
	if len(whyNot) > 0 {
		summary += ": " + strings.Join(whyNot, "; ")
	}
	if view != nil {
		v := view.view
		active := 0
		for _, p := range v.Participants {
			states[p.Name] = p
			if p.State == coordinator.StateActive {
				active++
			}
		}
		from := ""
		if several {
			from = " (through " + view.host + ")"
		}
		summary = fmt.Sprintf("coordinator view%s: %d/%d participants active, in doubt %d, committed %d, aborted %d since its start (epoch %d)",
			from, active, len(v.Participants), v.InDoubt, v.Committed, v.Aborted, v.Epoch)
	}
	if several {
		summary = groupSummary(list, listed, view, own) + "\n" + summary
	}
	var rows []StatusRow
	for _, hr := range perHost {
		for _, r := range hr {
			switch {
			case r.Err != nil:
			case r.Role == RoleCoordinator && several:
				r.View = coordinatorView(r.Host, own[r.Host], list, listed)
			case r.Role == RoleCoordinator && view != nil:
				r.View = fmt.Sprintf("serving, in doubt %d", view.view.InDoubt)
			case r.Role == RoleCoordinator:
				r.View = "not answering"
			case view == nil:
				r.View = "- (coordinator not answering)"
			case states[r.Host].Name != "":
				p := states[r.Host]
				if p.State == coordinator.StateOffline {
					r.View = p.State
				} else {
					r.View = fmt.Sprintf("%s (in flight %d, prepared %d)", p.State, p.InFlight, p.Prepared)
				}
			default:
				r.View = "unknown to the coordinator"
			}
			rows = append(rows, r)
		}
	}
	return rows, summary
}

// groupSummary is status's line about the group of coordinators:
// "coordinators: h1 leader, h2 follower, h3 not answering (term 4)";
// own has what each inventory coordinator said (nil: not asked).
func groupSummary(list []groupMember, listed bool, view *coordAnswer, own map[string]*coordAnswer) string {
	if !listed {
		return "coordinators: no coordinator says who they are (no leader, or none answers)"
	}
	var parts []string
	for _, m := range list {
		role := "follower"
		switch {
		case m.Leader:
			role = "leader"
		case own[m.Name] != nil && own[m.Name].viewErr != nil:
			role = "not answering"
		}
		parts = append(parts, m.Name+" "+role)
	}
	term := ""
	if view != nil {
		term = fmt.Sprintf(" (term %d)", view.view.Term)
	}
	if leaderOf(list) == "" {
		term = ", no leader"
	}
	return "coordinators: " + strings.Join(parts, ", ") + term
}

// coordinatorView is the view column of one of several coordinators:
// its role in the group, and whether it answers.
func coordinatorView(host string, a *coordAnswer, list []groupMember, listed bool) string {
	if a == nil {
		return "-"
	}
	if a.viewErr != nil {
		return "not answering"
	}
	i := slices.IndexFunc(list, func(m groupMember) bool { return m.Name == host })
	switch {
	case !listed:
		return "answering"
	case i < 0:
		return "not in the group"
	case list[i].Leader:
		return fmt.Sprintf("leader, in doubt %d", a.view.InDoubt)
	}
	return "follower of " + leaderOf(list)
}

// hostStatus returns a row per role of h and, on a coordinator's host,
// what the coordinator said.
func (o *Ops) hostStatus(ctx context.Context, h Host) ([]StatusRow, *coordAnswer) {
	fail := func(err error) ([]StatusRow, *coordAnswer) {
		var rows []StatusRow
		for _, r := range rolesOf(h) {
			rows = append(rows, StatusRow{Host: h.Name, Role: r, Err: err})
		}
		if h.Has(RoleCoordinator) {
			return rows, &coordAnswer{host: h.Name, viewErr: fmt.Errorf("%s: %w", h.Name, err), listErr: err}
		}
		return rows, nil
	}
	c, err := Dial(ctx, h, o.Inv.KnownHosts)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	systemd, err := c.serviceManager(ctx)
	if err != nil {
		return fail(err)
	}
	version := c.version(ctx)
	var rows []StatusRow
	var errs []error
	for _, r := range rolesOf(h) {
		st, err := c.state(ctx, r, systemd)
		if err != nil {
			errs = append(errs, err)
		}
		rows = append(rows, StatusRow{Host: h.Name, Role: r, State: st.Detail, PID: st.PID, Restarts: st.RestartText(), Version: version, Err: err})
	}
	if !h.Has(RoleCoordinator) {
		return rows, nil
	}
	a := &coordAnswer{host: h.Name}
	if err := errors.Join(errs...); err != nil {
		a.viewErr, a.listErr = err, err
		return rows, a
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	view, err := api.NewClient(h.LocalURL(RoleCoordinator), c.roleClient(RoleCoordinator, o.tls, o.clientToken)).Status(cctx)
	if err != nil {
		a.viewErr = fmt.Errorf("%s: %w", h.Name, err)
	} else {
		a.view = &view
	}
	if o.Inv.Several() {
		a.list, a.listErr = c.listGroup(ctx, o.tls, o.clientToken)
	}
	return rows, a
}
