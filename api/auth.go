package api

import "github.com/twopc/twopc/internal/rpc"

// Authorizer guards the coordinator's endpoint: tx.outcome can abort a
// transaction in flight, so only participants (holders of the peer token)
// may call it; every other method needs the client token, if one is set.
func Authorizer(peer, client rpc.Secret) rpc.Authorizer {
	forPeers, forClients := rpc.RequireToken(peer), rpc.RequireToken(client)
	return func(method string, p rpc.Presented) error {
		if method == "tx.outcome" {
			return forPeers(method, p)
		}
		return forClients(method, p)
	}
}
