package drill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twopc/twopc/internal/rpc"
)

// loseFollower replaces a coordinator lost with its disk, the way the
// README says one is replaced: a coordinator that does not lead is
// killed and its raft log deleted; the leader takes it out of the
// group; a new coordinator, under a name never used, starts with an
// empty log and --join, the leader adds it, and it must come to follow
// the leader. The lost one never comes back under its old name: with its
// votes forgotten, it could vote twice in a term. Every wait is bounded
// by LeaderWait; one that runs out is a finding (the group did not do
// what it promises), and so is a group whose members, at the end, are
// not the cluster's coordinators (the lost one still in, or the new one
// not).
func (f *faulter) loseFollower(ctx context.Context, p plan) error {
	cl, ok := f.cl.(CoordinatorLoser)
	if !ok {
		return fmt.Errorf("drill: %s: this cluster cannot replace a coordinator: %w", p.kind, errors.ErrUnsupported)
	}
	leader, term, err := f.waitLeader(ctx, "", "a leader, before "+string(p.kind), nil)
	if err != nil {
		return err
	}
	followers := slices.DeleteFunc(cl.Coordinators(), func(c string) bool { return c == leader })
	old := followers[p.pick%len(followers)]
	name := newCoordinatorName(append(cl.Coordinators(), f.lost...))
	what := fmt.Sprintf("lose follower %s (term %d)", old, term)
	start := f.rec.now()
	if err := cl.Kill(ctx, old); err != nil {
		return fmt.Errorf("drill: %s: %w", what, err)
	}
	f.counted(p.kind)
	if err := cl.LoseCoordinator(ctx, old); err != nil {
		return fmt.Errorf("drill: %s: deleting its raft log: %w", what, err)
	}
	f.mu.Lock()
	f.lost = append(f.lost, old)
	f.mu.Unlock()
	f.notifyCoordinators()
	if err := f.changeGroup(ctx, what, "coordinators.remove", []any{old}, func(m []string) bool { return !slices.Contains(m, old) }); err != nil {
		return err
	}
	removed := f.rec.now()
	members := map[string]string{}
	for _, c := range cl.Coordinators() {
		members[c] = cl.URL(c)
	}
	url, err := cl.AddCoordinator(ctx, name, members)
	if err != nil {
		return fmt.Errorf("drill: %s: starting %s in its place: %w", what, name, err)
	}
	f.notifyCoordinators()
	if err := f.changeGroup(ctx, what, "coordinators.add", []any{name, url}, func(m []string) bool { return slices.Contains(m, name) }); err != nil {
		return err
	}
	added := f.rec.now()
	follows, err := f.waitFollows(ctx, what, name)
	if err != nil {
		return err
	}
	what += fmt.Sprintf(" (raft log deleted; removed %v after the kill; %s joined in its place, following %s %v after it was added)",
		time.Duration(removed-start).Round(time.Millisecond), name, follows, time.Duration(f.rec.now()-added).Round(time.Millisecond))
	f.rec.event(Event{Start: start, End: f.rec.now(), What: what})
	// The group's members are now the cluster's coordinators: the lost
	// one out for good, the new one in.
	gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	group, err := f.w.group(gctx)
	if err != nil {
		return finding{fmt.Sprintf("%s: coordinators.list after it: %v", what, err)}
	}
	slices.Sort(group)
	if want := slices.Sorted(slices.Values(cl.Coordinators())); !slices.Equal(group, want) {
		return finding{fmt.Sprintf("%s: the group's members are %v, want %v (the coordinators that run)", what, group, want)}
	}
	return nil
}

// changeGroup asks the leader for a membership change (method, args)
// until done holds of the group's members, retrying on whoever leads
// next if leadership moves or the call's outcome is unknown, up to
// LeaderWait; past it, or refused, a finding.
func (f *faulter) changeGroup(ctx context.Context, what, method string, args []any, done func([]string) bool) error {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.LeaderWait)
	defer cancel()
	var last string
	for {
		leader, _, err := f.w.leader(ctx, "")
		if err == nil {
			err = f.w.change(ctx, leader, method, args...)
			if err == nil {
				return nil
			}
			err = fmt.Errorf("%s: %w", leader, err)
		}
		last = err.Error()
		// Whether it was made despite the error (an outcome unknown, a
		// retry that finds it done): the group says.
		if m, gerr := f.w.group(ctx); gerr == nil && done(m) {
			return nil
		}
		var fl *rpc.Fault
		if errors.As(err, &fl) && fl.Code == rpc.InvalidParams {
			return finding{fmt.Sprintf("%s: %s%q refused: %v", what, method, args, err)}
		}
		select {
		case <-ctx.Done():
			return finding{fmt.Sprintf("%s: waited %v for %s%q to be made, in vain (last: %s)", what, f.cfg.LeaderWait, method, args, last)}
		case <-time.After(100 * time.Millisecond): // poll interval
		}
	}
}

// waitFollows waits, up to LeaderWait, until the coordinator called
// name says, in its own status, that the coordinator the others name
// leads; past it, a finding. It returns the leader.
func (f *faulter) waitFollows(ctx context.Context, what, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.LeaderWait)
	defer cancel()
	var last string
	for {
		leader, term, err := f.w.leader(ctx, name)
		if err == nil {
			f.sawTerm(term)
			var its string
			var itsTerm uint64
			its, itsTerm, err = f.w.leaderOf(ctx, name)
			if err == nil && its == leader && itsTerm == term {
				return leader, nil
			}
			last = fmt.Sprintf("%s says %s leads in term %d; the others, %s in term %d", name, its, itsTerm, leader, term)
		}
		if err != nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return "", finding{fmt.Sprintf("%s: waited %v for %s to follow the leader, in vain (last: %s)", what, f.cfg.LeaderWait, name, last)}
		case <-time.After(100 * time.Millisecond): // poll interval
		}
	}
}

// notifyCoordinators tells whoever follows the coordinators (the load)
// that they changed.
func (f *faulter) notifyCoordinators() {
	if f.coordinatorsChanged != nil {
		f.coordinatorsChanged()
	}
}

// newCoordinatorName is a name none of used has: "c" and one more than
// the highest number among those named c1, c2, ...
func newCoordinatorName(used []string) string {
	n := 0
	for _, u := range used {
		if d, ok := strings.CutPrefix(u, "c"); ok {
			if i, err := strconv.Atoi(d); err == nil {
				n = max(n, i)
			}
		}
	}
	name := "c" + strconv.Itoa(n+1)
	for slices.Contains(used, name) { // "c01" and the like
		name += "x"
	}
	return name
}
