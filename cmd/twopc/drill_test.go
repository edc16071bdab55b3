package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twopc/twopc/ops/drill"
)

// twopc drill --check passes a linearizable history and refuses one that
// is not, writing the visualization beside it.
func TestCheckHistory(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, read string) string {
		path := filepath.Join(dir, name+".jsonl")
		err := drill.WriteHistory(path, drill.History{Ops: []drill.Op{
			{Client: 0, Kind: drill.Put, Key: "k", Value: "a", Outcome: drill.OK, Call: 0, Return: 10},
			{Client: 1, Kind: drill.Get, Key: "k", Value: read, Found: true, Outcome: drill.OK, Call: 20, Return: 30},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return path
	}
	if err := checkHistory(write("ok", "a"), time.Minute, drill.DefaultCheckMemory()); err != nil {
		t.Fatalf("a linearizable history: %v", err)
	}
	err := checkHistory(write("bad", "b"), time.Minute, drill.DefaultCheckMemory())
	if err == nil || !strings.Contains(err.Error(), "is not linearizable") {
		t.Fatalf("a get of a value never put: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.html")); err != nil {
		t.Fatalf("no visualization: %v", err)
	}
}
