package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twopc/twopc/api"
	"github.com/twopc/twopc/coordinator"
)

// runMembers changes who the participants are: members.add and
// members.remove on the coordinator, with the peer token; list is status.
func runMembers(args []string) error {
	usage := errors.New("want 'list', 'add NAME=URL' or 'remove NAME'")
	if len(args) == 0 {
		return usage
	}
	peerFlags := func(name, argsUsage, summary string) (*flag.FlagSet, *clientOpts) {
		fs, o := clientFlags("members "+name, argsUsage, summary)
		fs.StringVar(&o.peerTokenFile, "peer-token-file", "", "file holding the peer token, which changing the participants needs (or set "+envPeerToken+")")
		o.peer = true
		return fs, o
	}
	switch args[0] {
	case "list":
		fs, o := clientFlags("members list", "[flags]", "List the participants: name, state (active, excluded, catching-up, offline, overloaded) and URL")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			fs.Usage()
			return errors.New("members list takes no arguments")
		}
		st, err := o.status()
		if err != nil {
			return err
		}
		printStatus(os.Stdout, st)
		return nil
	case "add":
		fs, o := peerFlags("add", "[flags] NAME=URL", "Add a participant: it starts excluded, catches up from the write set, then joins it")
		wait := fs.Duration("wait", 0, "then wait this long at most until it is active, printing its state as it changes (0: do not wait)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		name, url, ok := strings.Cut(fs.Arg(0), "=")
		if fs.NArg() != 1 || !ok || name == "" || url == "" {
			fs.Usage()
			return errors.New("want NAME=URL, e.g. p4=http://10.0.0.4:7401/RPC2")
		}
		if _, err := o.call("members.add", name, url); err != nil {
			return err
		}
		fmt.Printf("added %s (%s); it catches up, then joins the write set\n", name, url)
		if *wait > 0 {
			return o.waitActive(name, *wait)
		}
		return nil
	case "remove":
		fs, o := peerFlags("remove", "[flags] NAME", "Take a participant out for good (refused if the write set would go below its minimum)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			fs.Usage()
			return errors.New("want NAME")
		}
		if _, err := o.call("members.remove", fs.Arg(0)); err != nil {
			return err
		}
		fmt.Printf("removed %s for good\n", fs.Arg(0))
		return nil
	case "-h", "--help", "help":
		fmt.Println("Usage: twopc members list [flags]\n       twopc members add [flags] NAME=URL\n       twopc members remove [flags] NAME\n\n" +
			"add and remove need the peer token (--peer-token-file or " + envPeerToken + "). Run 'twopc members add --help' for the flags.")
		return nil
	}
	return fmt.Errorf("unknown subcommand %q: %w", args[0], usage)
}

func (o *clientOpts) status() (coordinator.Status, error) {
	res, err := o.call("status")
	if err != nil {
		return coordinator.Status{}, err
	}
	return api.DecodeStatus(res)
}

// waitActive waits at most d until name is active, printing each state
// it passes through.
func (o *clientOpts) waitActive(name string, d time.Duration) error {
	o.peer = false // status needs the client token, if any
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	status := func(context.Context) (coordinator.Status, error) { return o.status() }
	if err := api.WaitActive(ctx, status, name, os.Stdout); err != nil {
		return fmt.Errorf("%w (see the coordinator's log)", err)
	}
	return nil
}
