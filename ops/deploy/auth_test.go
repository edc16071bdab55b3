package deploy

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// TestAgentAuth: with key "agent", the SSH agent's keys log in, and
// without an agent the error says how to fix it.
func TestAgentAuth(t *testing.T) {
	e := newEnv(t)
	pem, err := os.ReadFile(e.kit.keyPath)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ssh.ParseRawPrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); agent.ServeAgent(keyring, c) }()
		}
	}()
	for i := range e.inv.Hosts {
		e.inv.Hosts[i].Key = KeyAgent
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Setenv("SSH_AUTH_SOCK", sock)
	if err := e.ops.Stop(ctx, "all"); err != nil { // any command that logs in
		t.Fatalf("with the agent: %v\n%s", err, e.output())
	}
	if out := e.output(); strings.Count(out, "was not running") != 4 {
		t.Errorf("want every host reached")
	}

	t.Setenv("SSH_AUTH_SOCK", "")
	if err := e.ops.Stop(ctx, "h2"); err == nil {
		t.Fatal("without key or agent the login succeeded")
	}
	if out := e.output(); !strings.Contains(out, "no SSH key") {
		t.Errorf("the error does not say what is missing")
	}
}
