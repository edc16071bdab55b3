// Command twopc is the whole service in one binary: the coordinator, a
// participant, a local cluster for trying it out, a command-line client
// and an operator's view of a transaction log.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

type command struct {
	name, args, summary string
	run                 func(args []string) error
}

var commands = []command{
	{"local", "[flags]", "run a coordinator and 3 participants on loopback, restarting any that crashes (Ctrl-C stops them)", runLocal},
	{"coordinator", "[flags]", "serve the public XML-RPC API and drive two-phase commit", runCoordinator},
	{"participant", "[flags]", "serve one SQLite replica to a coordinator", runParticipant},
	{"put", "[flags] KEY VALUE", "store VALUE under KEY", runPut},
	{"get", "[flags] KEY", "print the value of KEY", runGet},
	{"delete", "[flags] KEY", "delete KEY; prints whether it existed", runDelete},
	{"status", "[flags]", "show the coordinator's view of the participants and transactions", runStatus},
	{"bench", "[flags]", "measure throughput and latency of a running coordinator", runBench},
	{"attack", "[flags] NAME", "send one of issue 13's attacks, for bench/hostile.sh", runAttack},
	{"drill", "[flags]", "attack a cluster with load, kill -9 and SIGSTOP, then check linearizability", runDrill},
	{"supervise", "[flags] -- COMMAND", "run 'twopc COMMAND' and restart it when it crashes (the deploy's background mode)", runSupervise},
	{"txn", "list|explain TXID", "list the transactions not finished in the cluster, or explain one", runTxn},
	{"members", "list|add NAME=URL|remove NAME", "list the participants, add one (it catches up, then joins), or remove one for good", runMembers},
	{"coordinators", "list|add NAME=URL|remove NAME", "with several coordinators: list them, add one (started with --join), or remove one for good", runCoordinators},
	{"txlog", "FILE", "list the transactions of a coordinator log still to be finished", runTxlog},
	{"version", "", "print the version", func([]string) error { fmt.Println(versionString()); return nil }},
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage(os.Stdout)
		return
	}
	for _, c := range commands {
		if c.name == os.Args[1] {
			err := c.run(os.Args[2:])
			if errors.Is(err, flag.ErrHelp) {
				return
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "twopc %s: %v\n", c.name, err)
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "twopc: unknown command %q\n\n", os.Args[1])
	usage(os.Stderr)
	os.Exit(2)
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "twopc %s: replicated writes made atomic with two-phase commit.\n\nUsage:\n", versionString())
	for _, c := range commands {
		fmt.Fprintf(w, "  twopc %-12s %-18s %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'twopc COMMAND --help' for the flags of a command and their defaults.\n")
}

// newFlags returns a flag set whose usage line names the command.
func newFlags(name, args, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: twopc %s %s\n\n%s.\n\nFlags:\n", name, args, summary)
		fs.PrintDefaults()
	}
	return fs
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", ""
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			return "dev-" + rev + dirty
		}
	}
	return "dev"
}
