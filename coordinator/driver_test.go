package coordinator

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/twopc/twopc/protocol"
	"github.com/twopc/twopc/txlog"
)

// STAGED is queued lazily (protocol.Start). Here nothing else ends its
// linger, which lasts an hour: the participants cannot say when their
// prepares leave, and no other record comes. Once the votes are in, the
// machine's Flush must: every put is answered, and its STAGED is
// durable, the only fsyncs being those Flush asked for.
func TestStagedLingerEndsWithTheVotes(t *testing.T) {
	dir := t.TempDir()
	log, _, err := txlog.Open(filepath.Join(dir, "coordinator.txlog"), txlog.Options{Linger: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	if err := log.Append(protocol.Record{Kind: protocol.KindEpoch, Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	var members []Member
	for i := 1; i <= 2; i++ {
		p := &swappable{name: fmt.Sprintf("p%d", i), path: filepath.Join(dir, fmt.Sprintf("p%d.db", i))}
		p.restart(t)
		defer p.kill()
		members = append(members, Member{Name: p.name, URL: p.path, Participant: p})
	}
	c, err := New(Config{Members: members, Log: log, Epoch: 1, PrepareTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before := log.Stats().Fsyncs
	for i := range 3 {
		// The guard only bounds a hang; a put takes milliseconds.
		ctx, cancel := context.WithTimeout(bg, time.Minute)
		err := c.Put(ctx, fmt.Sprintf("k%d", i), protocol.Value{Data: []byte("v")})
		cancel()
		if err != nil {
			t.Fatalf("put %d: %v (its STAGED lingered past the votes?)", i, err)
		}
	}
	if got := log.Stats().Fsyncs - before; got < 3 {
		t.Fatalf("3 puts answered with %d fsyncs: a STAGED was not durable", got)
	}
}
