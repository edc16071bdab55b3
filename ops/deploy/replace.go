package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twopc/twopc/api"
	"github.com/twopc/twopc/coordinator"
	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/peer"
)

// ReplaceParticipant puts a participant on a new host of the inventory
// in the place of another, lost or to be retired, the new one under its
// own name. The order is the point:
//
//  1. the new host is deployed and serves;
//  2. it is added (members.add): its join record is durable, and it
//     starts excluded, so no read goes to its empty database;
//  3. it catches up from the write set and joins it (status: excluded,
//     catching-up, active), within Replacement.Wait;
//  4. only then is the old one removed (members.remove): removing it
//     first would leave one replica fewer for as long as the copy takes;
//  5. the old host's participant is stopped if the host answers; a dead
//     host is fine: it is out of the cluster, and deploy does not start
//     a removed participant again (members.go);
//  6. status (old gone, every participant active) and the participants'
//     digests (all equal) are checked.
//
// Nothing is changed before the inventory, the credentials and the
// coordinator have been checked. A step already done is skipped with a
// word, so that after a failure (a catch-up slower than Wait, digests
// that differed under a heavy write load) the same command resumes.
type Replacement struct {
	Old, New string        // inventory host names, which are the participants' names
	Binary   string        // what the new host gets, as Deploy
	Wait     time.Duration // bound on step 3; 0: DefaultReplaceWait
}

// DefaultReplaceWait bounds a catch-up: copying a large store takes minutes.
const DefaultReplaceWait = 30 * time.Minute

// memberCallTimeout bounds one members.add, members.remove or status call.
const memberCallTimeout = 30 * time.Second

// replacement is one run of ReplaceParticipant.
type replacement struct {
	Replacement
	o       *Ops
	newHost Host
	oldHost *Host // nil: the inventory no longer lists it
	coord   *Conn // to the coordinator's host, for the whole run
	status  *api.Client
	members *rpc.Client // with the peer token, which members.* need
}

// ReplaceParticipant runs the replacement r (see Replacement), printing
// each step and its result to o.Out. Its error names the failed step.
func (o *Ops) ReplaceParticipant(ctx context.Context, r Replacement) error {
	if r.Wait <= 0 {
		r.Wait = DefaultReplaceWait
	}
	rp := &replacement{Replacement: r, o: o}
	what := fmt.Sprintf("replace %s by %s", r.Old, r.New)
	msg, err := rp.check(ctx)
	if rp.coord != nil {
		defer rp.coord.Close()
	}
	if err != nil {
		return fmt.Errorf("%s: nothing changed: %w", what, err)
	}
	fmt.Fprintf(o.Out, "%s: %s\n", what, msg)
	steps := []struct {
		name string
		run  func(context.Context) (string, error)
	}{
		{"deploy " + r.New, rp.deployNew},
		{"add " + r.New, rp.add},
		{fmt.Sprintf("wait until %s is active (at most %v)", r.New, r.Wait), rp.waitActive},
		{"remove " + r.Old, rp.removeOld},
		{"stop " + r.Old + "'s participant", rp.stopOld},
		{"check", rp.finalCheck},
	}
	for i, s := range steps {
		fmt.Fprintf(o.Out, "== step %d/%d: %s\n", i+1, len(steps), s.name)
		msg, err := s.run(ctx)
		if err != nil {
			return fmt.Errorf("%s: step %d/%d (%s): %w", what, i+1, len(steps), s.name, err)
		}
		fmt.Fprintf(o.Out, "   %s\n", strings.ReplaceAll(msg, "\n", "\n   "))
	}
	fmt.Fprintf(o.Out, "%s: done, %s is active in %s's place.\n%s\n", what, r.New, r.Old, rp.inventoryAdvice())
	return nil
}

// check looks at everything before anything changes: both names, the
// credentials, and the coordinator, which must answer and know at least
// one of the two (both, or only the new one, when this is a rerun).
func (rp *replacement) check(ctx context.Context) (string, error) {
	inv := rp.o.Inv
	if rp.Old == rp.New {
		return "", fmt.Errorf("%s twice: a machine that took a lost host's name needs no replacement: deploy it (mage deploy:host %s) and it catches up by itself", rp.Old, rp.Old)
	}
	i := slices.IndexFunc(inv.Hosts, func(h Host) bool { return h.Name == rp.New })
	if i < 0 {
		return "", fmt.Errorf("%w: %s is not in the inventory: add the new host (name, address, roles [\"participant\"], participant_listen) first", ErrInventory, rp.New)
	}
	rp.newHost = inv.Hosts[i]
	if !rp.newHost.Has(RoleParticipant) {
		return "", fmt.Errorf("%w: host %s does not have the participant role", ErrInventory, rp.New)
	}
	if i := slices.IndexFunc(inv.Hosts, func(h Host) bool { return h.Name == rp.Old }); i >= 0 {
		rp.oldHost = &inv.Hosts[i]
	}
	if err := rp.o.loadCredentials(false); err != nil {
		return "", err
	}
	// Any coordinator will do: with several, a follower forwards to the
	// leader. The first that answers status is used for the whole run.
	var st coordinator.Status
	var errs []error
	for _, h := range inv.Coordinators() {
		dctx, cancel := context.WithTimeout(ctx, hostTimeout)
		c, err := Dial(dctx, h, inv.KnownHosts)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("the coordinator's host %s: %w", h.Name, err))
			continue
		}
		rp.status = api.NewClient(h.LocalURL(RoleCoordinator), c.roleClient(RoleCoordinator, rp.o.tls, rp.o.clientToken))
		rp.members = rpc.NewClient(h.LocalURL(RoleCoordinator), c.roleClient(RoleCoordinator, rp.o.tls, rp.o.token))
		if st, err = rp.statusNow(ctx); err != nil {
			c.Close()
			errs = append(errs, fmt.Errorf("%s: %w", h.Name, err))
			continue
		}
		rp.coord = c
		break
	}
	if rp.coord == nil {
		return "", errors.Join(errs...)
	}
	old, nu := participant(st, rp.Old), participant(st, rp.New)
	url := rp.newHost.URL(RoleParticipant)
	switch {
	case old == nil && nu == nil:
		return "", fmt.Errorf("%s is not a participant (the coordinator has %s)", rp.Old, names(st))
	case nu != nil && nu.URL != url:
		return "", fmt.Errorf("%s is a participant already, at %s, and the inventory puts it at %s", rp.New, nu.URL, url)
	case old == nil:
		return fmt.Sprintf("%s is not a participant any more and %s is (%s): resuming", rp.Old, rp.New, nu.State), nil
	case nu != nil:
		return fmt.Sprintf("%s is a participant (%s), and %s too (%s): resuming", rp.Old, old.State, rp.New, nu.State), nil
	}
	return fmt.Sprintf("%s is a participant (%s); %s (%s) will serve at %s", rp.Old, old.State, rp.New, rp.newHost.Address, url), nil
}

// statusNow is the coordinator's status, bounded.
func (rp *replacement) statusNow(ctx context.Context) (coordinator.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, memberCallTimeout)
	defer cancel()
	st, err := rp.status.Status(ctx)
	if err != nil {
		return st, fmt.Errorf("the coordinator does not answer status: %w", err)
	}
	return st, nil
}

// participant is name's entry in st, or nil.
func participant(st coordinator.Status, name string) *coordinator.ParticipantStatus {
	for i := range st.Participants {
		if st.Participants[i].Name == name {
			return &st.Participants[i]
		}
	}
	return nil
}

func names(st coordinator.Status) string {
	var out []string
	for _, p := range st.Participants {
		out = append(out, p.Name)
	}
	return strings.Join(out, ", ")
}

// deployNew deploys the new host as Deploy does, then asks its
// participant for its digest with the peer token: it serves, and the
// coordinator's calls will be let in.
func (rp *replacement) deployNew(ctx context.Context) (string, error) {
	if err := rp.o.Deploy(ctx, rp.New, rp.Binary); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, hostTimeout)
	defer cancel()
	c, err := Dial(ctx, rp.newHost, rp.o.Inv.KnownHosts)
	if err != nil {
		return "", err
	}
	defer c.Close()
	d, err := peer.NewClient(rp.newHost.LocalURL(RoleParticipant), c.roleClient(RoleParticipant, rp.o.tls, rp.o.token), 0).Digest(ctx)
	if err != nil {
		return "", fmt.Errorf("%s's participant does not answer digest: %w", rp.New, err)
	}
	return fmt.Sprintf("%s serves at %s (%d keys, %d prepared)", rp.New, rp.newHost.URL(RoleParticipant), d.Keys, d.Prepared), nil
}

func (rp *replacement) add(ctx context.Context) (string, error) {
	st, err := rp.statusNow(ctx)
	if err != nil {
		return "", err
	}
	if p := participant(st, rp.New); p != nil {
		return fmt.Sprintf("%s is a participant already (%s): not added again", rp.New, p.State), nil
	}
	url := rp.newHost.URL(RoleParticipant)
	cctx, cancel := context.WithTimeout(ctx, memberCallTimeout)
	defer cancel()
	if _, err := rp.members.Call(cctx, "members.add", rp.New, url); err != nil {
		return "", fmt.Errorf("members.add %s %s: %w", rp.New, url, err)
	}
	return fmt.Sprintf("members.add %s %s: added; it starts excluded, catches up from the write set, then joins it", rp.New, url), nil
}

func (rp *replacement) waitActive(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, rp.Wait)
	defer cancel()
	if err := api.WaitActive(ctx, rp.status.Status, rp.New, rp.o.Out); err != nil {
		if errors.Is(err, api.ErrNotParticipant) {
			return "", fmt.Errorf("%w (removed meanwhile?)", err)
		}
		return "", fmt.Errorf("%w; the catch-up goes on in the coordinator (mage logs coordinator): run this command again to wait again", err)
	}
	return fmt.Sprintf("%s is in the write set: every write now reaches it", rp.New), nil
}

// removeOld removes the old participant, then writes the coordinator's
// config again, so that its next start names the participants its log
// has: no restart now (it has them already), none at the next deploy.
func (rp *replacement) removeOld(ctx context.Context) (string, error) {
	st, err := rp.statusNow(ctx)
	if err != nil {
		return "", err
	}
	msg := fmt.Sprintf("%s is not a participant any more: not removed again", rp.Old)
	if participant(st, rp.Old) != nil {
		cctx, cancel := context.WithTimeout(ctx, memberCallTimeout)
		defer cancel()
		if _, err := rp.members.Call(cctx, "members.remove", rp.Old); err != nil {
			return "", fmt.Errorf("members.remove %s: %w", rp.Old, err)
		}
		msg = fmt.Sprintf("members.remove %s: removed for good", rp.Old)
	}
	if err := rp.o.readMembership(ctx); err != nil {
		return "", fmt.Errorf("%s; the coordinator's config: %w", msg, err)
	}
	var hosts []Host // the coordinators deploy runs
	for _, h := range rp.o.Inv.Coordinators() {
		if why, err := rp.o.members.coordinatorOff(rp.o.Inv, h); why == "" && err == nil {
			hosts = append(hosts, h)
		}
	}
	changed, err := rp.o.reconfigure(ctx, hosts, RoleCoordinator)
	if err != nil {
		return "", fmt.Errorf("%s; the coordinator's config: %w", msg, err)
	}
	names := strings.Join(participantsArg(argsFile(rp.o.Inv.args(rp.coord.Host, RoleCoordinator, rp.o.members))), ", ")
	if len(changed) == 0 {
		return fmt.Sprintf("%s; the coordinator's config names %s already", msg, names), nil
	}
	return fmt.Sprintf("%s; the coordinator's config now names %s, for its next start (no restart needed: its log has them)", msg, names), nil
}

// stopOld stops the old host's participant if the host answers. An
// unreachable host is no failure: the participant is out of the cluster.
func (rp *replacement) stopOld(ctx context.Context) (string, error) {
	if rp.oldHost == nil {
		return fmt.Sprintf("%s is not in the inventory: nothing to stop from here (if its participant still runs, stop it on its host)", rp.Old), nil
	}
	ctx, cancel := context.WithTimeout(ctx, hostTimeout)
	defer cancel()
	c, err := Dial(ctx, *rp.oldHost, rp.o.Inv.KnownHosts)
	if err != nil {
		return fmt.Sprintf("%s is not reachable (%v): nothing stopped, which is fine: it is out of the cluster, and deploy will not start it again", rp.Old, err), nil
	}
	defer c.Close()
	systemd, err := c.serviceManager(ctx)
	if err != nil {
		return "", err
	}
	was, err := c.retire(ctx, RoleParticipant, systemd)
	if err != nil {
		return "", fmt.Errorf("%w (%s is out of the cluster already: stop it by hand, mage stop %s)", err, rp.Old, rp.Old)
	}
	verb := "stopped"
	if !was {
		verb = "was not running"
	}
	return fmt.Sprintf("%s's participant %s; its data stays in %s/data until you delete it", rp.Old, verb, rp.oldHost.Dir), nil
}

// inventoryAdvice says what the operator should change in the inventory.
func (rp *replacement) inventoryAdvice() string {
	file := rp.o.Inv.path
	if file == "" {
		file = "the inventory"
	}
	switch {
	case rp.oldHost == nil:
		return fmt.Sprintf("%s no longer lists %s: nothing to edit.", file, rp.Old)
	case len(rp.oldHost.Roles) > 1:
		return fmt.Sprintf("Now edit %s: take \"participant\" out of host %s's roles, and its participant_listen.\n"+
			"Until then a deploy leaves its participant stopped, and mage status reports it.", file, rp.Old)
	}
	return fmt.Sprintf("Now edit %s: delete host %s.\n"+
		"Until then a deploy leaves its participant stopped (or fails on %s, if the host is gone), and mage status reports it.", file, rp.Old, rp.Old)
}
