package deploy

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
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
		return newToken(inv.PeerTokenFile)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("peer token %s does not exist: run the deploy first, which creates it", inv.PeerTokenFile)
	}
	return readToken("peer token", inv.PeerTokenFile)
}

// ClientToken returns the token clients present to the coordinator, ""
// if the inventory sets none.
func (inv *Inventory) ClientToken() (string, error) {
	if inv.ClientTokenFile == "" {
		return "", nil
	}
	return readToken("client token", inv.ClientTokenFile)
}

// readToken reads the first line of a token file that only its owner can
// read: a secret others can read is no secret (the servers refuse such a
// file too).
func readToken(what, path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s %s is readable by others (mode %v): chmod 600 it", what, path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	tok, _, _ := strings.Cut(string(b), "\n")
	if tok = strings.TrimSpace(tok); tok == "" {
		return "", fmt.Errorf("%s %s is empty", what, path)
	}
	return tok, nil
}

func newToken(path string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(b)
	// Never replacing a file: two deploys racing must not each write
	// their own token.
	if err := writeNew(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("peer token: %w", err)
	}
	return tok, nil
}
