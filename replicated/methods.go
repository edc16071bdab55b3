package replicated

import (
	"context"
	"errors"
	"time"

	"github.com/twopc/twopc/consensus"
	"github.com/twopc/twopc/internal/rpc"
)

// The group's XML-RPC methods, served by the leader (a follower forwards
// them, as every request):
//
//	coordinators.list() -> [{name, url, leader: bool}]
//	coordinators.add(name, url) -> true     (peer token)
//	coordinators.remove(name) -> true       (peer token)
//
// api.Authorizer says which token each needs.

// changeTimeout bounds the wait for a membership change to be applied.
const changeTimeout = 10 * time.Second

// Register adds the group's methods to srv (the leader's API).
func (s *Server) Register(srv *rpc.Server) {
	srv.Register(rpc.Method{
		Name:      "coordinators.list",
		Help:      "coordinators.list(): the coordinators of the group: name, url, and whether it leads.",
		Signature: [][]string{{"array"}},
		Handler: func(ctx context.Context, ps []any) (any, error) {
			if err := rpc.Arity(ps); err != nil {
				return nil, err
			}
			role, _ := s.Role()
			var out []any
			for _, p := range s.node.Peers() {
				out = append(out, map[string]any{"name": p.Name, "url": p.URL, "leader": p.Name == role.Leader})
			}
			return out, nil
		},
	})
	srv.Register(rpc.Method{
		Name: "coordinators.add",
		Help: "coordinators.add(name, url): add the coordinator served at url to the group. Start it first with --join " +
			"(and every coordinator in --coordinators): it gets the log from the leader. A removed name is never used again. Needs the peer token.",
		Signature: [][]string{{"boolean", "string", "string"}},
		Handler: func(ctx context.Context, ps []any) (any, error) {
			p, err := rpc.Strings(ps, "name", "url")
			if err != nil {
				return nil, err
			}
			name, url := p[0], p[1]
			ctx, cancel := context.WithTimeout(ctx, changeTimeout)
			defer cancel()
			return true, changeFault(s.node.AddPeer(ctx, name, url))
		},
	})
	srv.Register(rpc.Method{
		Name: "coordinators.remove",
		Help: "coordinators.remove(name): take the coordinator out of the group for good (not the leader: stop it first). " +
			"A coordinator whose disk was lost is removed, then added back under a new name. Needs the peer token.",
		Signature: [][]string{{"boolean", "string"}},
		Handler: func(ctx context.Context, ps []any) (any, error) {
			p, err := rpc.Strings(ps, "name")
			if err != nil {
				return nil, err
			}
			name := p[0]
			ctx, cancel := context.WithTimeout(ctx, changeTimeout)
			defer cancel()
			return true, changeFault(s.node.RemovePeer(ctx, name))
		},
	})
}

func changeFault(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, consensus.ErrMembership):
		return rpc.Faultf(rpc.InvalidParams, "%v", err)
	case errors.Is(err, consensus.ErrNotLeader):
		return rpc.Faultf(rpc.Unavailable, "this coordinator stopped leading: nothing was changed, try again")
	}
	return rpc.Faultf(rpc.OutcomeUnknown, "membership change: %v; coordinators.list says whether it was made", err)
}
