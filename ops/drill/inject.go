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
		return f.processFault(ctx, p, fmt.Sprintf("kill %s (down %v)", p.target, p.hold.Round(time.Millisecond)), f.cl.Kill, f.cl.Restart)
	case PauseParticipant:
		return f.processFault(ctx, p, fmt.Sprintf("pause %s for %v", p.target, p.hold.Round(time.Millisecond)), f.cl.Pause, f.cl.Resume)
	case DelayLink, DropLink, CutLink:
		return f.linkFault(ctx, p)
	case LoseParticipant:
		return f.lose(ctx, p)
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

// linkFault starts a fault on the link to a participant, holds it, and ends
// it.
func (f *faulter) linkFault(ctx context.Context, p plan) error {
	fault := strings.TrimSuffix(string(p.kind), "-link") // delay, drop, cut: launch.Cluster.LinkFault's names
	what := fmt.Sprintf("%s %s %s for %v", fault, p.target, p.dir, p.hold.Round(time.Millisecond))
	if p.kind == DelayLink {
		what = fmt.Sprintf("delay %s %s by %v for %v", p.target, p.dir, p.delay.Round(time.Millisecond), p.hold.Round(time.Millisecond))
	}
	start := f.rec.now()
	end, err := f.cl.LinkFault(ctx, f.cl.Coordinator(), p.target, fault, p.dir, p.delay)
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
		st, err := f.members(ctx)
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
