package api

import "github.com/twopc/twopc/internal/rpc"

// Authorizer guards the coordinator's endpoint: tx.outcome can abort a
// transaction in flight, so only participants (holders of the peer token)
// may call it, and changing who the participants are (members.add,
// members.remove) is for operators holding the peer token too; every
// other method needs the client token, if one is set.
func Authorizer(peer, client rpc.Secret) rpc.Authorizer {
	forPeers, forClients := rpc.RequireToken(peer), rpc.RequireToken(client)
	return func(method string, p rpc.Presented) error {
		switch method {
		case "tx.outcome", "members.add", "members.remove", "coordinators.add", "coordinators.remove":
			return forPeers(method, p)
		}
		return forClients(method, p)
	}
}
