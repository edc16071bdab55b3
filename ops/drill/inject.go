package drill

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twopc/twopc/coordinator"
)

// finding is a fault that found the cluster failing a promise (a lost
// participant never excluded, or never back): a violation, not a drill
// that could not run.
type finding struct{ what string }

func (f finding) Error() string { return f.what }

// inject carries out one fault and records it as an event. Its steps use
// their own context: a fault, once started, is always finished (a killed
// process restarted, a link healed), even if the drill is being stopped.
func (f *faulter) inject(p plan) error {
	ctx := context.Background()
	switch p.kind {
	case KillCoordinator, KillParticipant:
		if p.kind == KillParticipant {
			f.countRefusals(ctx, p.target)
		}
		return f.processFault(ctx, p, fmt.Sprintf("kill %s (down %v)", p.target, p.hold.Round(time.Millisecond)), f.cl.Kill, f.cl.Restart)
	case PauseParticipant:
		return f.processFault(ctx, p, fmt.Sprintf("pause %s for %v", p.target, p.hold.Round(time.Millisecond)), f.cl.Pause, f.cl.Resume)
	case DelayLink, DropLink, CutLink:
		return f.linkFault(ctx, p)
	case LoseParticipant:
		return f.lose(ctx, p)
	case KillLeader, KillFollower:
		return f.leaderFault(ctx, p, "kill", f.cl.Kill, f.cl.Restart, nil)
	case PauseLeader:
		return f.leaderFault(ctx, p, "pause", f.cl.Pause, f.cl.Resume, nil)
	case LoseFollower:
		return f.loseFollower(ctx, p)
	case PartitionLeaderParticipants, PartitionLeaderCoordinators:
		var ends []func()
		var uncut []string // no link to cut (a coordinator added by a lose-follower has none with the others)
		cut := func(ctx context.Context, leader string) error {
			others := f.cl.Participants()
			if p.kind == PartitionLeaderCoordinators {
				others = slices.DeleteFunc(f.cl.Coordinators(), func(c string) bool { return c == leader })
			}
			for _, o := range others {
				end, err := f.cl.LinkFault(ctx, leader, o, p.fault, p.dir, 0)
				if errors.Is(err, errors.ErrUnsupported) {
					uncut = append(uncut, o)
					continue
				}
				if err != nil {
					for _, e := range ends {
						e()
					}
					return err
				}
				ends = append(ends, end)
			}
			return nil
		}
		heal := func(context.Context, string) error {
			for _, e := range ends {
				e()
			}
			return nil
		}
		// The leader cut off from only some of the others may well go on
		// leading with the rest: no takeover is due then.
		isolated := func() string {
			if len(uncut) == 0 {
				return ""
			}
			return fmt.Sprintf("; no link to %s, so no takeover is due", strings.Join(uncut, ", "))
		}
		return f.leaderFault(ctx, p, p.fault, cut, heal, isolated)
	}
	return fmt.Errorf("drill: no way to inject %q", p.kind)
}

// processFault acts on the process, holds the fault, and undoes it.
func (f *faulter) processFault(ctx context.Context, p plan, what string, act, undo func(context.Context, string) error) error {
	start := f.rec.now()
	if err := act(ctx, p.target); err != nil {
		return fmt.Errorf("drill: %s: %w", what, err)
	}
	f.counted(p.kind)
	<-f.after(p.hold) // the fault itself: how long the process stays dead or frozen
	if err := undo(ctx, p.target); err != nil {
		return fmt.Errorf("drill: undoing %s: %w", what, err)
	}
	f.rec.event(Event{Start: start, End: f.rec.now(), What: what})
	return nil
}

// linkFault starts a fault on the link between the coordinator (with
// several, the one that leads now) and a participant, holds it, and ends
// it.
func (f *faulter) linkFault(ctx context.Context, p plan) error {
	fault := strings.TrimSuffix(string(p.kind), "-link") // delay, drop, cut: launch.Cluster.LinkFault's names
	what := fmt.Sprintf("%s %s %s for %v", fault, p.target, p.dir, p.hold.Round(time.Millisecond))
	if p.kind == DelayLink {
		what = fmt.Sprintf("delay %s %s by %v for %v", p.target, p.dir, p.delay.Round(time.Millisecond), p.hold.Round(time.Millisecond))
	}
	coord := f.cl.Coordinator()
	if len(f.cl.Coordinators()) > 1 {
		leader, _, err := f.waitLeader(ctx, "", "a leader, before "+what, nil)
		if err != nil {
			return err
		}
		coord, what = leader, what+" from "+leader
	}
	start := f.rec.now()
	end, err := f.cl.LinkFault(ctx, coord, p.target, fault, p.dir, p.delay)
	if err != nil {
		return fmt.Errorf("drill: %s: %w", what, err)
	}
	f.counted(p.kind)
	<-f.after(p.hold)
	end()
	f.rec.event(Event{Start: start, End: f.rec.now(), What: what})
	return nil
}

// lose replaces a participant with an empty one, the way the design
// says a participant lost for good is replaced: once every participant
// is active, kill it and delete its database; wait until the coordinator
// has excluded it (so that it knows the participant is behind); restart
// it empty under its name, and wait until it has caught up and is active
// again. Waiting on the coordinator instead of holding for a drawn time
// is what makes the fault a fair test: an empty participant restarted
// before it was excluded would be taken for a current one, which no
// design can tell from a lost disk without an identity that the disk
// carries.
func (f *faulter) lose(ctx context.Context, p plan) error {
	name := p.target
	what := "lose " + name
	allActive := func(st map[string]string) bool {
		return !slices.ContainsFunc(slices.Collect(maps.Values(st)), func(s string) bool { return s != coordinator.StateActive })
	}
	if err := f.waitMembers(ctx, "every participant active, before losing "+name, allActive); err != nil {
		return err
	}
	f.countRefusals(ctx, name)
	start := f.rec.now()
	if err := f.cl.Kill(ctx, name); err != nil {
		return fmt.Errorf("drill: %s: %w", what, err)
	}
	f.counted(p.kind)
	wipeErr := f.cl.Wipe(ctx, name)
	var excluded error
	if wipeErr == nil {
		excluded = f.waitMembers(ctx, name+" excluded, after it was lost", func(st map[string]string) bool { return st[name] == coordinator.StateExcluded })
	}
	if err := f.cl.Restart(ctx, name); err != nil {
		return errors.Join(wipeErr, fmt.Errorf("drill: restarting %s: %w", what, err))
	}
	if wipeErr != nil {
		return fmt.Errorf("drill: %s: deleting its data: %w", what, wipeErr)
	}
	restarted := f.rec.now()
	back := f.waitMembers(ctx, name+" active, after it came back empty", func(st map[string]string) bool { return st[name] == coordinator.StateActive })
	f.rec.event(Event{Start: start, End: f.rec.now(), What: fmt.Sprintf("lose %s (database deleted; restarted empty %v after the kill, once excluded; active again %v later)",
		name, time.Duration(restarted-start).Round(time.Millisecond), time.Duration(f.rec.now()-restarted).Round(time.Millisecond))})
	return errors.Join(excluded, back)
}

// waitMembers polls the coordinator's view of the participants until ok
// holds, up to LoseWait; past it, a finding that says what it waited for
// and what it last saw.
func (f *faulter) waitMembers(ctx context.Context, what string, ok func(map[string]string) bool) error {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.LoseWait)
	defer cancel()
	var last string
	for {
		st, err := f.w.members(ctx)
		if err == nil && ok(st) {
			return nil
		}
		last = fmt.Sprint(st)
		if err != nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return finding{fmt.Sprintf("lose-participant: waited %v for %s, in vain (last status: %s); a lost participant needs the coordinator's --exclude-after, and rejoining",
				f.cfg.LoseWait, what, last)}
		case <-time.After(100 * time.Millisecond): // poll interval
		}
	}
}

// leaderFault is a fault on a coordinator of several: the leader (per
// status), or for KillFollower another one. It acts (kill, pause, or
// cut the leader off with act's links), holds the fault for the drawn
// time and, when the fault takes the leader away from the others (all
// but KillFollower and PartitionLeaderParticipants), until another
// coordinator leads in a higher term, then undoes it. A takeover that
// does not come within LeaderWait is a finding: the cluster promises
// one within seconds (DESIGN.md).
//
// notIsolated, if set, says after act why the leader is not taken away
// from the others after all ("" if it is): then no takeover is waited
// for.
func (f *faulter) leaderFault(ctx context.Context, p plan, verb string, act, undo func(context.Context, string) error, notIsolated func() string) error {
	leader, term, err := f.waitLeader(ctx, "", "a leader, before "+string(p.kind), nil)
	if err != nil {
		return err
	}
	target, role := leader, "leader"
	if p.kind == KillFollower {
		followers := slices.DeleteFunc(f.cl.Coordinators(), func(c string) bool { return c == leader })
		target, role = followers[p.pick%len(followers)], "follower"
	}
	what := fmt.Sprintf("%s %s %s (term %d) for %v", verb, role, target, term, p.hold.Round(time.Millisecond))
	switch p.kind {
	case PartitionLeaderParticipants:
		what = fmt.Sprintf("%s %s the leader %s (term %d) from the participants for %v", verb, p.dir, target, term, p.hold.Round(time.Millisecond))
	case PartitionLeaderCoordinators:
		what = fmt.Sprintf("%s %s the leader %s (term %d) from the other coordinators for %v", verb, p.dir, target, term, p.hold.Round(time.Millisecond))
	}
	start := f.rec.now()
	if err := act(ctx, target); err != nil {
		return fmt.Errorf("drill: %s: %w", what, err)
	}
	f.counted(p.kind)
	held := f.after(p.hold) // the fault itself
	var took error
	takeover := p.kind != KillFollower && p.kind != PartitionLeaderParticipants
	if notIsolated != nil {
		if why := notIsolated(); why != "" {
			what += why
			takeover = false
		}
	}
	if takeover {
		var next string
		var nextTerm uint64
		next, nextTerm, took = f.waitLeader(ctx, leader, "another coordinator leading, after "+what,
			func(n string, t uint64) bool { return n != leader && t > term })
		if took == nil {
			what += fmt.Sprintf("; %s took over in term %d after %v", next, nextTerm, time.Duration(f.rec.now()-start).Round(time.Millisecond))
			f.mu.Lock()
			f.takeovers++
			f.mu.Unlock()
		}
	}
	<-held
	if err := undo(ctx, target); err != nil {
		return errors.Join(took, fmt.Errorf("drill: undoing %s: %w", what, err))
	}
	f.rec.event(Event{Start: start, End: f.rec.now(), What: what})
	return took
}

// waitLeader polls the coordinators but avoid until one names a leader
// for which ok holds (nil: any), up to LeaderWait; past it, a finding
// that says what it waited for and what it last saw. Every term it sees
// counts towards the highest.
func (f *faulter) waitLeader(ctx context.Context, avoid, what string, ok func(string, uint64) bool) (string, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.LeaderWait)
	defer cancel()
	var last string
	for {
		leader, term, err := f.w.leader(ctx, avoid)
		if err == nil {
			f.sawTerm(term)
			if ok == nil || ok(leader, term) {
				return leader, term, nil
			}
			last = fmt.Sprintf("%s leads in term %d", leader, term)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return "", 0, finding{fmt.Sprintf("waited %v for %s, in vain (last: %s)", f.cfg.LeaderWait, what, last)}
		case <-time.After(100 * time.Millisecond): // poll interval
		}
	}
}

// countRefusals adds what a participant about to be killed says of its
// stale-term refusals, which its restart resets. A participant whose
// stats do not come (it is down or slow) is not counted: a report, not
// a check.
func (f *faulter) countRefusals(ctx context.Context, name string) {
	if f.w.refusals == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if n, err := f.w.refusals(ctx, name); err == nil {
		f.mu.Lock()
		f.refusals[name] += n
		f.mu.Unlock()
	}
}
