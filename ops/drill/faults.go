package drill

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// FaultKind is one kind of fault the drill injects.
type FaultKind string

const (
	// KillCoordinator: SIGKILL the coordinator, wait, restart it.
	KillCoordinator FaultKind = "kill-coordinator"
	// KillParticipant: SIGKILL one participant, wait, restart it.
	KillParticipant FaultKind = "kill-participant"
	// PauseParticipant: SIGSTOP one participant for longer than the
	// prepare timeout, then SIGCONT.
	PauseParticipant FaultKind = "pause-participant"
	// DelayLink: delay every chunk between the coordinator and one
	// participant, in one direction or both, for a while.
	DelayLink FaultKind = "delay-link"
	// DropLink: black-hole that traffic (a partition: nothing arrives,
	// nothing is reset) for longer than the prepare timeout.
	DropLink FaultKind = "drop-link"
	// CutLink: reset the connections one side opens to the other, and
	// every new one, for a while.
	CutLink FaultKind = "cut-link"
	// LoseParticipant: SIGKILL one participant, delete its database,
	// wait until the coordinator excludes it, restart it empty under the
	// same name, and wait until it has caught up and is active again
	// (the coordinator must run with --exclude-after).
	LoseParticipant FaultKind = "lose-participant"

	// With several coordinators (kill-coordinator does not apply), the
	// coordinator that leads now, per status, or another:

	// KillLeader: SIGKILL the leader; wait until another coordinator
	// leads, in a higher term, and for the drawn time; restart it.
	KillLeader FaultKind = "kill-leader"
	// PauseLeader: SIGSTOP the leader; wait until another leads, and
	// for as long as a pause lasts; SIGCONT.
	PauseLeader FaultKind = "pause-leader"
	// KillFollower: SIGKILL a coordinator that does not lead, wait,
	// restart it.
	KillFollower FaultKind = "kill-follower"
	// LoseFollower: SIGKILL a coordinator that does not lead and
	// delete its raft log; take it out of the group (coordinators.remove
	// on the leader) and start a new coordinator under a new name that
	// joins it (--join, coordinators.add), as a coordinator lost with
	// its disk is replaced (it must not come back under its old name:
	// it could vote twice); wait until the new one follows the leader.
	// It runs alone, as lose-participant does, and needs at least three
	// coordinators and a Cluster that is a CoordinatorLoser.
	LoseFollower FaultKind = "lose-follower"
	// PartitionLeaderParticipants: black-hole (drop) or reset (cut) the
	// traffic between the leader and every participant, in one
	// direction or both, for as long as a fault on a link lasts. It
	// stays leader; writes fail meanwhile.
	PartitionLeaderParticipants FaultKind = "partition-leader-participants"
	// PartitionLeaderCoordinators: the same between the leader and
	// every other coordinator (raft's messages and forwarded requests);
	// wait until another leads, and for the drawn time; heal.
	PartitionLeaderCoordinators FaultKind = "partition-leader-coordinators"
)

// ProcessFaults are the kinds every Cluster that controls processes can
// inject; they are the default.
var ProcessFaults = []FaultKind{KillCoordinator, KillParticipant, PauseParticipant}

// NetworkFaults need a Cluster with fault proxies on its links
// (launch.Config.NetworkFaults).
var NetworkFaults = []FaultKind{DelayLink, DropLink, CutLink}

// LeaderFaults replace KillCoordinator with several coordinators
// (LoseFollower with three or more).
var LeaderFaults = []FaultKind{KillLeader, PauseLeader, KillFollower, LoseFollower}

// PartitionFaults need several coordinators and the fault proxies.
var PartitionFaults = []FaultKind{PartitionLeaderParticipants, PartitionLeaderCoordinators}

// FaultKinds lists every kind, in the order summaries print them.
var FaultKinds = []FaultKind{KillCoordinator, KillLeader, PauseLeader, KillFollower, LoseFollower, KillParticipant, PauseParticipant,
	DelayLink, DropLink, CutLink, PartitionLeaderParticipants, PartitionLeaderCoordinators, LoseParticipant}

// weight is how often each kind is drawn once every kind has been
// injected once: kills of the coordinator (of the leader) are the most
// telling; a lost follower, which takes seconds and runs alone, is rare.
var weight = map[FaultKind]int{KillCoordinator: 4, KillLeader: 4, PauseLeader: 3, KillFollower: 2, LoseFollower: 1, KillParticipant: 3, PauseParticipant: 3,
	DelayLink: 2, DropLink: 2, CutLink: 2, PartitionLeaderParticipants: 2, PartitionLeaderCoordinators: 2, LoseParticipant: 2}

// onProcess says whether k acts on a process (lose-participant does):
// those come one at a time (see faulter.mayStart).
func (k FaultKind) onProcess() bool {
	return !slices.Contains(NetworkFaults, k) && !slices.Contains(PartitionFaults, k)
}

// onCoordinator says whether k takes a coordinator away from the others
// (or, cutting the leader off from the participants, from its work):
// those come one at a time, so that a majority of coordinators always
// stays up and in touch.
func (k FaultKind) onCoordinator() bool {
	return k == KillCoordinator || slices.Contains(LeaderFaults, k) || slices.Contains(PartitionFaults, k)
}

// alone says whether k runs with no other fault under way: a
// lose-participant (see faulter) and a lose-follower, which changes
// who the coordinators are.
func (k FaultKind) alone() bool { return k == LoseParticipant || k == LoseFollower }

// onLink says whether k needs the fault proxies.
func (k FaultKind) onLink() bool {
	return slices.Contains(NetworkFaults, k) || slices.Contains(PartitionFaults, k)
}

// FaultConfig shapes the fault schedule. Chaos and CoordinatorKills are
// the two profiles the operator's commands run.
type FaultConfig struct {
	// Kinds are the kinds to inject (default: ProcessFaults).
	Kinds []FaultKind
	// Limit ends the drill's load once this many faults are over (0: no
	// limit; the load runs for Config.Duration).
	Limit int
	// Every is the mean gap between the moment a fault may start (see
	// MaxActive) and its start (uniform in [Every/2, 3*Every/2]); 0
	// disables faults.
	Every time.Duration
	// MaxActive bounds the faults under way at once (default 3). Faults
	// on processes come one at a time, as they always did, and a
	// lose-participant runs alone; faults on links overlap them and
	// each other. A lose-follower runs alone too.
	MaxActive int
	// MaxDown bounds how long a killed process stays down (uniform in
	// [0, MaxDown]).
	MaxDown time.Duration
	// PauseMin and PauseMax bound a pause; PauseMin must exceed the
	// coordinator's prepare timeout, so that prepares really time out.
	PauseMin, PauseMax time.Duration
	// LinkMin and LinkMax bound how long a fault on a link lasts; like
	// a pause, it should outlast the prepare timeout.
	LinkMin, LinkMax time.Duration
	// MaxDelay bounds the latency a delay-link adds (uniform in [0,
	// MaxDelay]).
	MaxDelay time.Duration
	// LeaderWait bounds each wait for a leader: before a fault that
	// targets the leader, and for another coordinator to take over
	// after the leader is killed, paused or cut off from the others
	// (default 60s). A wait that runs out is a violation.
	LeaderWait time.Duration
	// LoseWait bounds each wait of a lose-participant for the
	// coordinator: to see every participant active before one is lost,
	// to exclude the lost one, and to have it back active once it
	// restarts empty (default 60s). A wait that runs out is a violation:
	// the cluster did not do what it promises.
	LoseWait time.Duration
}

func (f *FaultConfig) defaults() {
	if len(f.Kinds) == 0 {
		f.Kinds = ProcessFaults
	}
	if f.MaxActive <= 0 {
		f.MaxActive = 3
	}
	if f.LoseWait <= 0 {
		f.LoseWait = time.Minute
	}
	if f.LeaderWait <= 0 {
		f.LeaderWait = time.Minute
	}
}

// Chaos is the randomized profile: every kind of fault on processes, one
// every `every` on average, processes down for up to a second, pauses of
// 1.5x to 3x the coordinator's prepare timeout; faults on links, once
// added (With), last as long as pauses and delay by up to half the
// prepare timeout.
func Chaos(every, prepareTimeout time.Duration) FaultConfig {
	return FaultConfig{Every: every, MaxDown: time.Second, PauseMin: prepareTimeout * 3 / 2, PauseMax: prepareTimeout * 3,
		LinkMin: prepareTimeout * 3 / 2, LinkMax: prepareTimeout * 3, MaxDelay: prepareTimeout / 2}
}

// With returns f with kinds added to its kinds (ProcessFaults if it had
// none).
func (f FaultConfig) With(kinds ...FaultKind) FaultConfig {
	f.Kinds = slices.Clone(f.Kinds)
	if len(f.Kinds) == 0 {
		f.Kinds = slices.Clone(ProcessFaults)
	}
	for _, k := range kinds {
		if !slices.Contains(f.Kinds, k) {
			f.Kinds = append(f.Kinds, k)
		}
	}
	return f
}

// ForCoordinators returns f for a cluster of n coordinators: with
// several, KillCoordinator becomes LeaderFaults (less LoseFollower with
// two: the one left could not remove the lost one), and faults on links
// bring PartitionFaults along. With one, f as it is.
func (f FaultConfig) ForCoordinators(n int) FaultConfig {
	if n <= 1 {
		return f
	}
	kinds := f.Kinds
	if len(kinds) == 0 {
		kinds = ProcessFaults
	}
	f.Kinds = nil
	for _, k := range kinds {
		switch {
		case k == KillCoordinator:
			for _, l := range LeaderFaults {
				if (l != LoseFollower || n >= 3) && !slices.Contains(f.Kinds, l) {
					f.Kinds = append(f.Kinds, l)
				}
			}
		case !slices.Contains(f.Kinds, k):
			f.Kinds = append(f.Kinds, k)
		}
	}
	if slices.ContainsFunc(f.Kinds, func(k FaultKind) bool { return slices.Contains(NetworkFaults, k) }) {
		f = f.With(PartitionFaults...)
	}
	return f
}

// fits refuses kinds that do not apply to a cluster of n coordinators.
func (f FaultConfig) fits(n int) error {
	for _, k := range f.Kinds {
		switch {
		case n > 1 && k == KillCoordinator:
			return fmt.Errorf("drill: %s with %d coordinators: use %v (FaultConfig.ForCoordinators)", k, n, LeaderFaults)
		case n == 1 && (slices.Contains(LeaderFaults, k) || slices.Contains(PartitionFaults, k)):
			return fmt.Errorf("drill: %s needs several coordinators", k)
		case n < 3 && k == LoseFollower:
			return fmt.Errorf("drill: %s needs at least three coordinators (with two, the one left cannot remove the lost one)", k)
		}
	}
	return nil
}

// CoordinatorKills is the kill profile: n SIGKILLs of the coordinator, one
// every `every` on average, each down for up to a second; the load stops
// after the last restart.
func CoordinatorKills(n int, every time.Duration) FaultConfig {
	return FaultConfig{Kinds: []FaultKind{KillCoordinator}, Limit: n, Every: every, MaxDown: time.Second}
}

// Describe says what the faults do to the processes, for an operator
// about to run them on a cluster: "SIGKILLs the coordinator 3 times".
func (f FaultConfig) Describe() string {
	if f.Every <= 0 {
		return "injects no faults"
	}
	f.defaults()
	words := map[FaultKind]string{KillCoordinator: "SIGKILLs the coordinator", KillParticipant: "SIGKILLs participants",
		PauseParticipant: "SIGSTOPs participants (for " + f.PauseMin.String() + " to " + f.PauseMax.String() + ")",
		DelayLink:        "delays the traffic between the coordinator and participants (by up to " + f.MaxDelay.String() + ")",
		DropLink:         "black-holes that traffic (for " + f.LinkMin.String() + " to " + f.LinkMax.String() + ")",
		CutLink:          "resets its connections",
		LoseParticipant:  "deletes the database of participants it kills, for them to catch up",
		KillLeader:       "SIGKILLs the leading coordinator", PauseLeader: "SIGSTOPs the leading coordinator",
		KillFollower:                "SIGKILLs coordinators that do not lead",
		LoseFollower:                "deletes the raft log of coordinators that do not lead, which it kills, and replaces them with new ones under new names",
		PartitionLeaderParticipants: "cuts the leader off from the participants",
		PartitionLeaderCoordinators: "cuts the leader off from the other coordinators"}
	var what []string
	for _, k := range f.Kinds {
		what = append(what, words[k])
	}
	how := fmt.Sprintf("one fault every %v on average", f.Every)
	if f.Limit > 0 {
		how = fmt.Sprintf("%d times, %s apart on average", f.Limit, f.Every)
	}
	return strings.Join(what, ", ") + ", " + how + ", restarting what it kills"
}
