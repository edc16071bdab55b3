package api

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twopc/twopc/internal/rpc"
)

func cmp(key, target, op string, value any) map[string]any {
	return map[string]any{"key": key, "target": target, "op": op, "value": value}
}

func op(kind, key string, value ...any) map[string]any {
	m := map[string]any{"op": kind, "key": key}
	if len(value) > 0 {
		m["value"] = value[0]
	}
	return m
}

func list(v ...any) []any { return v }

// txn as DESIGN.md specifies it: compares pick the branch, results come
// back per op, versions count writes, and one branch's writes land
// together.
func TestTxn(t *testing.T) {
	f := newFixture(t)
	c := f.serve(Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxCompares: 3, MaxOps: 4})
	call := func(args ...any) map[string]any {
		t.Helper()
		res, err := c.Call(bg, "txn", args...)
		if err != nil {
			t.Fatalf("txn%v: %v", args, err)
		}
		return res.(map[string]any)
	}
	// Create two accounts only if the first does not exist.
	r := call(list(cmp("alice", "exists", "==", false)),
		list(op("put", "alice", "10"), op("put", "bob", "5"), op("get", "alice")),
		list(op("get", "alice")))
	if fmt.Sprint(r) != "map[results:[map[version:1] map[version:1] map[found:true value:10 version:1]] succeeded:true]" {
		t.Fatalf("create: %v", r)
	}
	// Again: the compare fails, the failure branch reads, nothing changes.
	r = call(list(cmp("alice", "exists", "==", false)), list(op("put", "alice", "0")), list(op("get", "alice")))
	if fmt.Sprint(r) != "map[results:[map[found:true value:10 version:1]] succeeded:false]" {
		t.Fatalf("create again: %v", r)
	}
	// A transfer guarded by both versions; then the same guard fails.
	transfer := func() map[string]any {
		return call(list(cmp("alice", "version", "==", int64(1)), cmp("bob", "version", "==", int64(1))),
			list(op("put", "alice", "7"), op("put", "bob", "8")))
	}
	if r = transfer(); r["succeeded"] != true || fmt.Sprint(r["results"]) != "[map[version:2] map[version:2]]" {
		t.Fatalf("transfer: %v", r)
	}
	if r = transfer(); r["succeeded"] != false || len(r["results"].([]any)) != 0 {
		t.Fatalf("stale transfer: %v", r)
	}
	// Value compares are bytewise; a missing key's value compare is false.
	r = call(list(cmp("alice", "value", "<", "8"), cmp("carol", "value", "!=", "x")), list(op("delete", "bob")), list(op("get", "carol")))
	if r["succeeded"] != false || fmt.Sprint(r["results"]) != "[map[found:false version:0]]" {
		t.Fatalf("compare on a missing key: %v", r)
	}
	r = call(list(cmp("alice", "value", "<", "8")), list(op("delete", "bob"), op("delete", "nobody")))
	if fmt.Sprint(r) != "map[results:[map[existed:true] map[existed:false]] succeeded:true]" {
		t.Fatalf("deletes: %v", r)
	}
	// A read-only transaction over two keys, and put/get/delete still work.
	r = call(list(), list(op("get", "alice"), op("get", "bob")))
	if fmt.Sprint(r["results"]) != "[map[found:true value:7 version:2] map[found:false version:0]]" {
		t.Fatalf("read-only: %v", r)
	}
	if v, err := c.Call(bg, "get", "alice"); err != nil || v != "7" {
		t.Fatalf("get after txns: %v %v", v, err)
	}
	// A binary value comes back binary.
	r = call(list(), list(op("put", "b", []byte{0, 1}), op("get", "b")))
	if got, ok := r["results"].([]any)[1].(map[string]any)["value"].([]byte); !ok || string(got) != "\x00\x01" {
		t.Fatalf("binary value: %v", r)
	}

	// Refusals: each names the problem, and nothing is written.
	long := strings.Repeat("k", 9)
	for _, tc := range []struct {
		name string
		args []any
		code int
		msg  string
	}{
		{"one param", list(list()), rpc.InvalidParams, "want 2 or 3 params"},
		{"compares not an array", list("x", list()), rpc.InvalidParams, "param 1 (compares): want array, got string"},
		{"compare not a struct", list(list(int64(1)), list()), rpc.InvalidParams, "compare 1: want struct, got int"},
		{"unknown target", list(list(cmp("k", "size", "==", int64(1))), list()), rpc.InvalidParams, `unknown target "size"`},
		{"unknown compare op", list(list(cmp("k", "value", ">=", "1")), list()), rpc.InvalidParams, `unknown compare op ">="`},
		{"version of the wrong type", list(list(cmp("k", "version", "==", "1")), list()), rpc.InvalidParams, "must be an int, got string"},
		{"exists with <", list(list(cmp("k", "exists", "<", true)), list()), rpc.InvalidParams, "exists takes == or != only"},
		{"unknown op", list(list(), list(op("upsert", "w", "1"))), rpc.InvalidParams, `unknown op "upsert"`},
		{"put without value", list(list(), list(op("put", "w"))), rpc.InvalidParams, "success op 1: member value is missing"},
		{"get with a value", list(list(), list(op("get", "w", "x"))), rpc.InvalidParams, "a get takes no value"},
		{"unknown member", list(list(), list(map[string]any{"op": "get", "key": "w", "ttl": int64(1)})), rpc.InvalidParams, `unknown member "ttl"`},
		{"empty key", list(list(), list(op("put", "", "1"))), rpc.InvalidParams, "key must not be empty"},
		{"key written twice", list(list(), list(op("put", "w", "1"), op("delete", "w"))), rpc.InvalidParams, `writes key "w" a second time`},
		{"twice in failure", list(list(), list(), list(op("put", "w", "1"), op("put", "w", "2"))), rpc.InvalidParams, "failure op 2"},
		{"key too long", list(list(), list(op("put", long, "1"))), rpc.TooLarge, "key is 9 bytes, the limit is 8"},
		{"value too long", list(list(), list(op("put", "w", strings.Repeat("v", 17)))), rpc.TooLarge, "value is 17 bytes, the limit is 16"},
		{"too many compares", list(list(cmp("a", "exists", "==", true), cmp("b", "exists", "==", true), cmp("c", "exists", "==", true), cmp("d", "exists", "==", true)), list()), rpc.TooLarge, "4 compares, the limit is 3"},
		{"too many ops", list(list(), list(op("get", "a"), op("get", "b"), op("get", "c"), op("get", "d"), op("put", "w", "1"))), rpc.TooLarge, "5 ops in success, the limit is 4"},
	} {
		_, err := c.Call(bg, "txn", tc.args...)
		var flt *rpc.Fault
		if !errors.As(err, &flt) || flt.Code != tc.code || !strings.Contains(flt.Message, tc.msg) {
			t.Errorf("%s: %v, want fault %d with %q", tc.name, err, tc.code, tc.msg)
		}
	}
	if _, err := c.Call(bg, "get", "w"); err == nil {
		t.Error(`"w" was written by a refused txn`)
	}
}
