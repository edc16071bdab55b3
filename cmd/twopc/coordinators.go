package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
)

// runCoordinators changes who the coordinators are, with several:
// coordinators.add and coordinators.remove on the leader (any
// coordinator forwards), with the peer token.
func runCoordinators(args []string) error {
	usage := errors.New("want 'list', 'add NAME=URL' or 'remove NAME'")
	if len(args) == 0 {
		return usage
	}
	peerFlags := func(name, argsUsage, summary string) (*flag.FlagSet, *clientOpts) {
		fs, o := clientFlags("coordinators "+name, argsUsage, summary)
		fs.StringVar(&o.peerTokenFile, "peer-token-file", "", "file holding the peer token, which changing the coordinators needs (or set "+envPeerToken+")")
		o.peer = true
		return fs, o
	}
	switch args[0] {
	case "list":
		fs, o := clientFlags("coordinators list", "[flags]", "List the coordinators of the group and which one leads")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		res, err := o.call("coordinators.list")
		if err != nil {
			return err
		}
		list, _ := res.([]any)
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tROLE\tURL")
		for _, e := range list {
			m, _ := e.(map[string]any)
			role := "follower"
			if m["leader"] == true {
				role = "leader"
			}
			fmt.Fprintf(w, "%v\t%s\t%v\n", m["name"], role, m["url"])
		}
		return w.Flush()
	case "add":
		fs, o := peerFlags("add", "[flags] NAME=URL", "Add a coordinator to the group; start it first with --join")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		name, url, ok := strings.Cut(fs.Arg(0), "=")
		if fs.NArg() != 1 || !ok || name == "" || url == "" {
			fs.Usage()
			return errors.New("want NAME=URL, e.g. c4=http://10.0.0.4:7400/RPC2")
		}
		if _, err := o.call("coordinators.add", name, url); err != nil {
			return err
		}
		fmt.Printf("added %s (%s) to the group; it gets the log from the leader\n", name, url)
		return nil
	case "remove":
		fs, o := peerFlags("remove", "[flags] NAME", "Take a coordinator out of the group for good (not the leader: stop it first)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			fs.Usage()
			return errors.New("want NAME")
		}
		if _, err := o.call("coordinators.remove", fs.Arg(0)); err != nil {
			return err
		}
		fmt.Printf("removed %s from the group for good; stop its process\n", fs.Arg(0))
		return nil
	case "-h", "--help", "help":
		fmt.Println("Usage: twopc coordinators list [flags]\n       twopc coordinators add [flags] NAME=URL\n       twopc coordinators remove [flags] NAME\n\n" +
			"add and remove need the peer token (--peer-token-file or " + envPeerToken + "). Run 'twopc coordinators add --help' for the flags.")
		return nil
	}
	return fmt.Errorf("unknown subcommand %q: %w", args[0], usage)
}
