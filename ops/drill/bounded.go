package drill

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Porcupine's search stops only at its timeout, and its cache grows
// without bound meanwhile: re-checking a 10-minute drill offline grew to
// 24 GB and the kernel's OOM killer took the machine down with it. So
// CheckBounded runs the search in a child process, this same executable
// started again (checkerEnv), and kills it once its resident memory
// (VmRSS in /proc/PID/status) passes the bound: the kernel frees all of
// it at once, and the group being searched is Unknown, as past the
// timeout. Nothing within one process does this: GOMEMLIMIT only makes
// the collector work harder while the live cache keeps growing; RLIMIT_AS
// makes the runtime die with "out of memory" and a stack trace, not a
// verdict; and a model step that failed past the bound would turn
// "stopped" into "not linearizable". The watch needs /proc, so Linux.

// checkerEnv, set, makes this executable a checker child (serveChecker)
// instead of what it is.
const checkerEnv = "TWOPC_DRILL_CHECKER"

// ErrOutOfMemory is Visualize's error when the search again for the
// visualization reached CheckBounded's memory bound.
var ErrOutOfMemory = errors.New("drill: the linearizability search reached its memory bound")

// The child is served from init, not from a command of twopc, because
// every executable that runs a drill re-executes itself: twopc, mage's,
// and the test binaries of the packages that call Run. They all link this
// package; one that ran its own main or its tests instead would fork
// without end.
func init() {
	if os.Getenv(checkerEnv) == "" {
		return
	}
	if err := serveChecker(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "drill checker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// DefaultCheckMemory is the bound on the check's memory by default: half
// of this machine's memory (MemTotal), leaving the other half to the
// cluster and the drill, which are still running. A fixed size would
// still sink a small machine and give up early on a big one, and
// MemAvailable would make the verdict depend on what else ran at the
// time. It is 0 (no bound) where /proc/meminfo cannot be read, as the
// bound needs /proc.
func DefaultCheckMemory() int64 {
	kb, err := procKB("/proc/meminfo", "MemTotal")
	if err != nil {
		return 0
	}
	half := kb << 10 / 2
	return half - half%(1<<20) // whole MiB, as the flag shows it
}

// CheckBounded is Check with the resident memory of the search bounded
// by memory bytes (0 or less: no bound; Check itself). It searches in
// child processes and kills one past the bound: the group it was
// searching is then Unknown (Verdict.OutOfMemory), and a new child goes
// on with the next groups. The search again for the visualization runs
// under the same bound; past it, Visualize returns ErrOutOfMemory. The
// error is for a child that could not run or failed.
func CheckBounded(h History, timeout time.Duration, memory int64) (Verdict, error) {
	if memory <= 0 {
		return Check(h, timeout), nil
	}
	c := newChecker(h)
	deadline := deadlineOf(timeout)
	todo := make([]int, len(c.groups))
	for i := range todo {
		todo[i] = i
	}
	for len(todo) > 0 {
		j := job{History: h, Groups: todo}
		if timeout > 0 {
			j.Timeout = max(time.Until(deadline), time.Nanosecond) // 0 would be no bound
		}
		decided := 0
		stopped, err := runChecker(j, memory, func(out io.Reader) {
			dec := json.NewDecoder(out)
			for ; decided < len(todo); decided++ {
				var d decision
				if dec.Decode(&d) != nil {
					return
				}
				c.add(todo[decided], d)
			}
		})
		if err != nil {
			return Verdict{}, err
		}
		todo = todo[decided:]
		switch {
		case !stopped && len(todo) > 0:
			return Verdict{}, fmt.Errorf("drill: the checker ended with %d groups left", len(todo))
		case stopped && decided == 0:
			// Stopped at its first group, that group's search is what
			// outgrew the bound. A child stopped later may have been
			// carrying an earlier group's garbage: the next one starts
			// afresh at the same group.
			c.add(todo[0], decision{Result: porcupine.Unknown, OutOfMemory: true})
			c.v.OutOfMemory = memory
			todo = todo[1:]
		}
	}
	if c.illegal != nil {
		var page bytes.Buffer
		stopped, err := runChecker(job{History: h, Groups: c.illegal, Visualize: true, Timeout: timeout}, memory,
			func(out io.Reader) { page.ReadFrom(out) })
		switch {
		case err != nil:
			return Verdict{}, err
		case stopped:
			c.v.visualizeErr = fmt.Errorf("%w of %s in the search again for the visualization", ErrOutOfMemory, mib(memory))
		default:
			c.v.html = page.Bytes()
		}
	}
	return c.v, nil
}

// job is what a checker child is given, on its standard input.
type job struct {
	History History
	// Groups are the groups of keys (model.partition) to decide, in this
	// order, or with Visualize to search again verbosely and draw.
	Groups    []int
	Visualize bool
	Timeout   time.Duration // for them all; 0: no bound
}

// serveChecker does a job in the child: it writes each group's decision
// as one JSON line as soon as it has it, so that the decisions stand if
// it is killed at a later group; or, with Visualize, porcupine's page.
func serveChecker(in io.Reader, out io.Writer) error {
	var j job
	if err := json.NewDecoder(in).Decode(&j); err != nil {
		return err
	}
	c := newChecker(j.History)
	if j.Visualize {
		return porcupine.Visualize(c.v.model, c.verbose(j.Groups, j.Timeout), out)
	}
	enc := json.NewEncoder(out) // one write per line, out being unbuffered
	deadline := deadlineOf(j.Timeout)
	for _, i := range j.Groups {
		if err := enc.Encode(c.decide(i, deadline)); err != nil {
			return err
		}
	}
	return nil
}

// runChecker runs a checker child on j and hands its output to read,
// while it watches the child's resident memory: past memory bytes, it
// kills the child and reports that it did.
func runChecker(j job, memory int64, read func(io.Reader)) (stopped bool, err error) {
	in, err := json.Marshal(j)
	if err != nil {
		return false, err
	}
	self, err := os.Executable()
	if err != nil {
		return false, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), checkerEnv+"=1")
	cmd.Stdin, cmd.Stderr = bytes.NewReader(in), os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return false, err
	}
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("drill: starting the checker: %w", err)
	}
	done := make(chan struct{})
	go func() {
		read(out)
		io.Copy(io.Discard, out) // to the end, for Wait
		close(done)
	}()
	// Wait reaps the child only once the watch is over, so that the watch
	// never reads the status of another process under the same number.
	stopped, err = watchMemory(cmd.Process, memory, done)
	<-done
	waited := cmd.Wait()
	switch {
	case err != nil:
		return false, fmt.Errorf("drill: watching the checker's memory, which needs Linux's /proc: %w", err)
	case waited != nil && !stopped:
		return false, fmt.Errorf("drill: the checker failed: %w", waited)
	}
	return stopped, nil
}

// watchMemory reads p's resident memory every 10 ms until done is closed,
// and kills p once it is past memory bytes; it reports whether it did. A
// search that grows at 200 MB/s passes the bound by 2 MB or so.
func watchMemory(p *os.Process, memory int64, done <-chan struct{}) (bool, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		kb, err := procKB(fmt.Sprintf("/proc/%d/status", p.Pid), "VmRSS")
		if err != nil {
			p.Kill()
			return false, err
		}
		if kb<<10 > memory {
			return true, p.Kill()
		}
		select {
		case <-done:
			return false, nil
		case <-tick.C:
		}
	}
}

// procKB reads a "Key: N kB" line of a /proc file; 0 if it has none
// (VmRSS of a process that has exited).
func procKB(path, key string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64)
		}
	}
	return 0, sc.Err()
}

// mib is a size in bytes as the drill's messages write it.
func mib(n int64) string { return fmt.Sprintf("%d MiB", n>>20) }
