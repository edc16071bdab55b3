package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/twopc/twopc/internal/hostile"
)

// runAttack sends one of issue 13's attacks (internal/hostile) for a
// while and prints what came back. bench/hostile.sh runs it beside
// `twopc bench`, as its own process, so that the attacker's work does not
// share the load generator's runtime.
func runAttack(args []string) error {
	fs := newFlags("attack", "[flags] NAME", "Send an attack of issue 13 ("+attackNames()+") to a cluster and print what the servers answered")
	addr := fs.String("addr", "http://"+defaultCoordinator+"/RPC2", "coordinator URL")
	participant := fs.String("participant", "http://127.0.0.1:7401/RPC2", "participant URL, for the attacks that aim at one")
	duration := fs.Duration("duration", 10*time.Second, "how long to attack")
	workers := fs.Int("attackers", 0, "concurrent attackers (0: as many as the issue used)")
	flagsUsage := fs.Usage
	fs.Usage = func() {
		flagsUsage()
		fmt.Fprintf(fs.Output(), "\nAttacks:\n")
		for _, a := range hostile.All {
			fmt.Fprintf(fs.Output(), "  %-13s %s (%d attackers)\n", a.Name, a.About, a.Workers)
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("want one attack: " + attackNames())
	}
	a, ok := hostile.ByName(fs.Arg(0))
	if !ok {
		return fmt.Errorf("no attack %q: want one of %s", fs.Arg(0), attackNames())
	}
	if *duration <= 0 || *workers < 0 {
		return errors.New("--duration must be positive and --attackers not negative")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	r, err := hostile.Run(ctx, a, hostile.Target{Coordinator: *addr, Participant: *participant}, *workers)
	if err != nil {
		return err
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	fmt.Printf("attack %s: %v cpu=%.1fs\n", a.Name, r, cpu.Seconds())
	return nil
}

func attackNames() string {
	var names []string
	for _, a := range hostile.All {
		names = append(names, a.Name)
	}
	return strings.Join(names, ", ")
}
