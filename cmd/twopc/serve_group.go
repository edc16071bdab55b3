package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/twopc/twopc/consensus"
	"github.com/twopc/twopc/coordinator"
	"github.com/twopc/twopc/replicated"
	"github.com/twopc/twopc/txlog"
)

// serveGroup runs this process as one of several coordinators (package
// replicated): whichever leads serves, the others forward to it.
func (cs *coordServer) serveGroup(name, list, logPath, listen string, join bool, sec *security) error {
	urls, err := parseGroup(list)
	if err != nil {
		return err
	}
	if _, ok := urls[name]; !ok {
		return fmt.Errorf("--name %q is not in --coordinators (%s)", name, list)
	}
	forward, err := sec.httpClient("") // the client's own token goes along
	if err != nil {
		return err
	}
	group, err := replicated.Start(replicated.Config{
		Raft:             consensus.Config{Name: name, Peers: urls, Join: join, Path: logPath, Client: cs.hc, Logger: cs.log},
		Forward:          forward.Transport,
		FollowerMaxProcs: cs.followerProcs,
		Logger:           cs.log,
		Start: func(group *replicated.Server, term uint64, st *txlog.State, log *consensus.Log) (replicated.Instance, error) {
			base := cs.base
			cs2 := *cs
			// A decision that cannot be made durable any more usually means
			// this coordinator stopped leading: raft reports it, and the
			// incarnation is closed then. If it still leads, the
			// transaction is stuck in this incarnation: exit, as a single
			// coordinator does, so that the next leader recovers it.
			base.Fatal = func(err error) {
				if group.ServingTerm() == term {
					cs.log.Error("decision log failed while leading; exiting so that another coordinator takes over and recovers", "term", term, "err", err)
					os.Exit(2)
				}
				cs.log.Warn("decision not committed: this coordinator no longer leads", "term", term, "err", err)
			}
			cs2.base = base
			c, err := cs2.newCoordinator(log, term, st, name)
			if err != nil {
				return nil, err
			}
			h := cs.apiHandler(c)
			group.Register(h)
			return &instance{c: c, h: h}, nil
		},
	})
	if err != nil {
		return err
	}
	defer group.Stop()
	status := func(ctx context.Context) coordinator.Status {
		if inst := group.Instance(); inst != nil {
			return inst.(*instance).c.Status(ctx)
		}
		r, _ := group.Role()
		return coordinator.Status{Role: "follower", Leader: r.Leader, Term: r.Term, Epoch: r.Term}
	}
	pending := func(ctx context.Context) []coordinator.PendingTx {
		if inst := group.Instance(); inst != nil {
			return inst.(*instance).c.Pending(ctx)
		}
		return nil
	}
	cs.log.Info("one of several coordinators", "name", name, "coordinators", list, "log", logPath)
	return serve(cs.log, listen, cs.webHandler(group, status, pending, group.RaftHandler()), group, sec)
}

// instance is one term's coordinator and its API.
type instance struct {
	c *coordinator.Coordinator
	h http.Handler
}

func (i *instance) Handler() http.Handler { return i.h }
func (i *instance) Close()                { i.c.Close() }

// parseGroup reads "c1=http://host:7400/RPC2,c2=...".
func parseGroup(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		name, u, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || name == "" || !strings.HasPrefix(u, "http") {
			return nil, fmt.Errorf("--coordinators: %q is not NAME=http://HOST:PORT/RPC2", part)
		}
		if _, err := url.Parse(u); err != nil {
			return nil, fmt.Errorf("--coordinators: %q: %v", part, err)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("--coordinators: %q twice", name)
		}
		out[name] = u
	}
	return out, nil
}
