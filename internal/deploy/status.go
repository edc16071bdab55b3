package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/twopc/twopc/internal/rpc"
)

// StatusRow is one process as status sees it.
type StatusRow struct {
	Host, Role, State, Version string
	PID                        int
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
	fmt.Fprintln(w, "HOST\tROLE\tPROCESS\tPID\tVERSION\tSERVICE VIEW")
	var bad []string
	for _, r := range rows {
		if r.Err != nil {
			fmt.Fprintf(w, "%s\t%s\tUNREACHABLE\t-\t-\t%s\n", r.Host, r.Role, strings.ReplaceAll(r.Err.Error(), "\n", " "))
			bad = append(bad, r.Host)
			continue
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", r.Host, r.Role, r.State, r.PID, r.Version, r.View)
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
	var view map[string]any
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
	states := map[string]map[string]any{} // participant name -> its entry in the coordinator's view
	summary := "coordinator view: unavailable"
	if viewErr != nil {
		summary += ": " + viewErr.Error()
	}
	if view != nil {
		ps, _ := view["participants"].([]any)
		active := 0
		for _, p := range ps {
			m, _ := p.(map[string]any)
			name, _ := m["name"].(string)
			states[name] = m
			if m["state"] == "active" {
				active++
			}
		}
		summary = fmt.Sprintf("coordinator view: %d/%d participants active, in doubt %v, committed %v, aborted %v, epoch %v",
			active, len(ps), view["in_doubt"], view["committed"], view["aborted"], view["epoch"])
	}
	var rows []StatusRow
	for _, hr := range perHost {
		for _, r := range hr {
			switch {
			case r.Err != nil:
			case r.Role == RoleCoordinator && view != nil:
				r.View = fmt.Sprintf("serving, in doubt %v", view["in_doubt"])
			case r.Role == RoleCoordinator:
				r.View = "not answering"
			case view == nil:
				r.View = "- (coordinator not answering)"
			case states[r.Host] != nil:
				m := states[r.Host]
				r.View = fmt.Sprintf("%v (in flight %v, prepared %v)", m["state"], m["in_flight"], m["prepared"])
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
func (o *Ops) hostStatus(ctx context.Context, h Host) ([]StatusRow, map[string]any, error) {
	fail := func(err error) ([]StatusRow, map[string]any, error) {
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
		rows = append(rows, StatusRow{Host: h.Name, Role: r, State: st.Detail, PID: st.PID, Version: version, Err: err})
	}
	if !h.Has(RoleCoordinator) {
		return rows, nil, errors.Join(errs...)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := rpc.NewClient(h.LocalURL(RoleCoordinator), c.roleClient(RoleCoordinator, o.tls, o.clientToken)).Call(cctx, "status")
	if err != nil {
		return rows, nil, err
	}
	view, ok := res.(map[string]any)
	if !ok {
		return rows, nil, fmt.Errorf("coordinator status: unexpected reply %T", res)
	}
	return rows, view, nil
}
