package deploy

import (
	"context"
	"errors"
	"fmt"
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
// participant's state, in-doubt count). It returns an error if a host
// cannot be reached or a process is not running and active.
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
		if r.State != "active" || (r.Role == RoleParticipant && !strings.HasPrefix(r.View, "active")) {
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

// collect asks every host in parallel, then the coordinator for its view.
func (o *Ops) collect(ctx context.Context) ([]StatusRow, string) {
	hosts := o.Inv.Hosts
	perHost := make([][]StatusRow, len(hosts))
	var view *coordinator.Status
	var viewErr error
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, hostTimeout)
			defer cancel()
			rows, v, verr := o.hostStatus(ctx, h)
			perHost[i] = rows
			if h.Has(RoleCoordinator) {
				view, viewErr = v, verr
			}
		})
	}
	wg.Wait()
	states := map[string]coordinator.ParticipantStatus{} // participant name -> its entry in the coordinator's view
	summary := "coordinator view: unavailable"
	if viewErr != nil {
		summary += ": " + viewErr.Error()
	}
	if view != nil {
		active := 0
		for _, p := range view.Participants {
			states[p.Name] = p
			if p.State == coordinator.StateActive {
				active++
			}
		}
		summary = fmt.Sprintf("coordinator view: %d/%d participants active, in doubt %d, committed %d, aborted %d since its start (epoch %d)",
			active, len(view.Participants), view.InDoubt, view.Committed, view.Aborted, view.Epoch)
	}
	var rows []StatusRow
	for _, hr := range perHost {
		for _, r := range hr {
			switch {
			case r.Err != nil:
			case r.Role == RoleCoordinator && view != nil:
				r.View = fmt.Sprintf("serving, in doubt %d", view.InDoubt)
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

// hostStatus returns a row per role of h and, on the coordinator's host,
// the coordinator's status reply.
func (o *Ops) hostStatus(ctx context.Context, h Host) ([]StatusRow, *coordinator.Status, error) {
	fail := func(err error) ([]StatusRow, *coordinator.Status, error) {
		var rows []StatusRow
		for _, r := range rolesOf(h) {
			rows = append(rows, StatusRow{Host: h.Name, Role: r, Err: err})
		}
		return rows, nil, err
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
		return rows, nil, errors.Join(errs...)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	view, err := api.NewClient(h.LocalURL(RoleCoordinator), c.roleClient(RoleCoordinator, o.tls, o.clientToken)).Status(cctx)
	if err != nil {
		return rows, nil, err
	}
	return rows, &view, nil
}
