package deploy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/twopc/twopc/internal/secret"
)

// The peer token is what makes a participant answer only its coordinator
// (and the coordinator's tx.outcome only its participants); a server
// listening beyond loopback refuses to start without one. The deploy
// creates it once, keeps it in the inventory's peer_token_file (0600) and
// uploads it to each host's etc/peer.token (0600); the processes read it
// from there, so it never appears in a command line, a unit file or a log.

// PeerToken returns the cluster's peer token. With create, a missing token
// file is created with a new random token; otherwise it is an error.
func (inv *Inventory) PeerToken(create bool) (string, error) {
	_, err := os.Stat(inv.PeerTokenFile)
	if errors.Is(err, fs.ErrNotExist) && create {
		tok, err := secret.Ensure(inv.PeerTokenFile)
		if err != nil {
			return "", fmt.Errorf("peer token: %w", err)
		}
		return tok, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("peer token %s does not exist: run the deploy first, which creates it", inv.PeerTokenFile)
	}
	tok, err := secret.Read(inv.PeerTokenFile)
	if err != nil {
		return "", fmt.Errorf("peer token: %w", err)
	}
	return tok, nil
}

// ClientToken returns the token clients present to the coordinator, ""
// if the inventory sets none.
func (inv *Inventory) ClientToken() (string, error) {
	if inv.ClientTokenFile == "" {
		return "", nil
	}
	tok, err := secret.Read(inv.ClientTokenFile)
	if err != nil {
		return "", fmt.Errorf("client token: %w", err)
	}
	return tok, nil
}
