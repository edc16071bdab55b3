package replicated

import "runtime"

// procs switches GOMAXPROCS with the role. A follower's work is a few
// goroutines in turn (receive an append, sync it, answer), and where the
// coordinators share a few cores with the participants, as in twopc
// local, a follower free to run on every core spends more CPU waking
// threads that hand that work to each other than on the work. The leader
// gets every core it started with. Changing GOMAXPROCS stops the world
// for a moment, so it is done only when the role changes.
type procs struct {
	follower, leader int // 0 follower: never switch
	now              int // 0 until the first role
}

func newProcs(follower int) procs {
	return procs{follower: follower, leader: runtime.GOMAXPROCS(0)}
}

// set gives this process the CPUs of its role.
func (p *procs) set(leading bool) {
	want := p.follower
	if leading {
		want = p.leader
	}
	if p.follower > 0 && want != p.now {
		runtime.GOMAXPROCS(want)
		p.now = want
	}
}
