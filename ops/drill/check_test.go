package drill

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

// Shorthands for hand-made histories; times are abstract ticks.
func put(c int, k, v string, call, ret int64) Op {
	return Op{Client: c, Kind: Put, Key: k, Value: v, Outcome: OK, Call: call, Return: ret}
}
func get(c int, k, v string, call, ret int64) Op {
	return Op{Client: c, Kind: Get, Key: k, Value: v, Found: true, Outcome: OK, Call: call, Return: ret}
}
func getMissing(c int, k string, call, ret int64) Op {
	return Op{Client: c, Kind: Get, Key: k, Outcome: OK, Call: call, Return: ret}
}
func del(c int, k string, existed bool, call, ret int64) Op {
	return Op{Client: c, Kind: Delete, Key: k, Existed: existed, Outcome: OK, Call: call, Return: ret}
}
func outcome(o Op, out Outcome) Op { o.Outcome = out; o.Found, o.Existed = false, false; return o }
func at(o Op, replica string) Op   { o.Replica = replica; return o }

// verdict is a hand-made history and what Check must say of it.
type verdict struct {
	name    string
	ops     []Op
	illegal []string // keys reported; nil: linearizable
}

// checkVerdicts runs Check on each history, as a subtest.
func checkVerdicts(t *testing.T, cases []verdict) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := Check(History{Ops: tc.ops}, 0)
			want := porcupine.Ok
			if tc.illegal != nil {
				want = porcupine.Illegal
			}
			if v.Result != want {
				t.Fatalf("Check = %v, want %v", v.Result, want)
			}
			if !slices.Equal(v.BadKeys, tc.illegal) {
				t.Fatalf("bad keys %q, want %q", v.BadKeys, tc.illegal)
			}
		})
	}
}

func TestCheckerVerdicts(t *testing.T) {
	checkVerdicts(t, []verdict{
		{"sequential put get delete", []Op{
			put(0, "k", "a", 0, 10), get(0, "k", "a", 20, 30), del(0, "k", true, 40, 50), getMissing(0, "k", 60, 70),
		}, nil},
		{"stale read: a get after an acknowledged put returns the older value", []Op{
			put(0, "k", "a", 0, 10), put(0, "k", "b", 20, 30), get(1, "k", "a", 40, 50),
		}, []string{"k"}},
		{"a get concurrent with the put may return either value", []Op{
			put(0, "k", "a", 0, 10), put(0, "k", "b", 20, 60), get(1, "k", "a", 30, 40), get(2, "k", "b", 35, 45),
		}, nil},
		{"new value seen, then the old one again", []Op{
			put(0, "k", "a", 0, 10), put(0, "k", "b", 20, 100), get(1, "k", "b", 30, 40), get(2, "k", "a", 50, 60),
		}, []string{"k"}},
		{"lost acknowledged write: not found after put returned", []Op{
			put(0, "k", "a", 0, 10), getMissing(1, "k", 20, 30),
		}, []string{"k"}},
		{"lost acknowledged write: a final read on a replica misses it", []Op{
			put(0, "k", "a", 0, 10), put(0, "k", "b", 20, 30),
			at(get(10, "k", "b", 100, 110), "p1"), at(get(11, "k", "a", 100, 110), "p2"), at(get(12, "k", "b", 100, 110), "p3"),
		}, []string{"k"}},
		{"write visible on one replica only: an unknown put seen by one final read, not the others", []Op{
			put(0, "k", "a", 0, 10), outcome(put(1, "k", "b", 20, 30), Unknown),
			at(get(10, "k", "b", 100, 110), "p1"), at(get(11, "k", "a", 100, 110), "p2"), at(get(12, "k", "a", 100, 110), "p3"),
		}, []string{"k"}},
		{"an unknown put may have taken effect", []Op{
			put(0, "k", "a", 0, 10), outcome(put(1, "k", "b", 20, 30), Unknown), get(2, "k", "b", 40, 50),
		}, nil},
		{"an unknown put may never take effect", []Op{
			put(0, "k", "a", 0, 10), outcome(put(1, "k", "b", 20, 30), Unknown), get(2, "k", "a", 40, 50),
		}, nil},
		{"unknown writes that never took effect, then final reads of the older value", []Op{
			put(0, "k", "a", 0, 10), outcome(put(1, "k", "b", 20, 30), Unknown), outcome(del(2, "k", false, 20, 30), Unknown),
			at(get(10, "k", "a", 100, 110), "p1"), at(get(11, "k", "a", 100, 110), "p2"), at(get(12, "k", "a", 100, 110), "p3"),
		}, nil},
		{"an unknown put that took effect, seen by every final read", []Op{
			put(0, "k", "a", 0, 10), outcome(put(1, "k", "b", 20, 30), Unknown),
			at(get(10, "k", "b", 100, 110), "p1"), at(get(11, "k", "b", 101, 111), "p2"), at(get(12, "k", "b", 102, 112), "p3"),
		}, nil},
		{"an unknown put may take effect long after its caller gave up", []Op{
			outcome(put(1, "k", "b", 0, 10), Unknown), getMissing(2, "k", 20, 30), get(2, "k", "b", 40, 50),
		}, nil},
		{"a failed put (fault: no effect) is read", []Op{
			put(0, "k", "a", 0, 10), outcome(put(1, "k", "b", 20, 30), Failed), get(2, "k", "b", 40, 50),
		}, []string{"k"}},
		{"delete reports a value that was not there", []Op{
			put(0, "k", "a", 0, 10), del(0, "k", true, 20, 30), del(1, "k", true, 40, 50),
		}, []string{"k"}},
		{"delete loses its acknowledged effect", []Op{
			put(0, "k", "a", 0, 10), del(0, "k", true, 20, 30), get(1, "k", "a", 40, 50),
		}, []string{"k"}},
		{"keys are independent: only the bad key is named", []Op{
			put(0, "x", "1", 0, 10), get(1, "x", "1", 20, 30),
			put(0, "y", "2", 0, 10), getMissing(1, "y", 20, 30),
		}, []string{"y"}},
	})
}

func TestVisualizeAndHistoryRoundTrip(t *testing.T) {
	dir := t.TempDir()
	h := History{
		Ops:    []Op{put(0, "k", "a", 0, 10), put(0, "k", "b", 20, 30), get(1, "k", "a", 40, 50)},
		Events: []Event{{Start: 15, End: 25, What: "kill coordinator"}},
	}
	path := filepath.Join(dir, "h.jsonl")
	if err := WriteHistory(path, h); err != nil {
		t.Fatal(err)
	}
	back, err := ReadHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Ops, h.Ops) || !slices.Equal(back.Events, h.Events) {
		t.Fatalf("read back %+v, wrote %+v", back, h)
	}
	// In this process, and in a child under a memory bound: the same
	// verdict and the same picture.
	v := Check(back, 0)
	bounded, err := CheckBounded(back, 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if bounded.String() != v.String() || !slices.Equal(bounded.BadKeys, v.BadKeys) {
		t.Fatalf("in a child: %v, bad keys %q; in this process: %v, %q", bounded, bounded.BadKeys, v, v.BadKeys)
	}
	for name, v := range map[string]Verdict{"h": v, "bounded": bounded} {
		html := filepath.Join(dir, name+".html")
		if err := v.Visualize(html); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(html)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"kill coordinator", `put(\"k\", \"b\")`} {
			if !strings.Contains(string(b), want) {
				t.Fatalf("%s lacks %s", html, want)
			}
		}
	}
}

// A search that ran out of time proved nothing: the drill must not pass,
// and must not call it a violation either.
func TestUndecidedIsNotAPass(t *testing.T) {
	r := Result{Checked: true, Undecided: true}
	if r.Passed() {
		t.Fatal("a drill whose linearizability check timed out passed")
	}
	if s := r.Summary(); !strings.Contains(s, "result=UNKNOWN (the linearizability check timed out)") {
		t.Fatalf("summary %q", s)
	}
	r.Verdict.OutOfMemory = 200 << 20
	if s := r.Summary(); !strings.Contains(s, "result=UNKNOWN (the linearizability check reached its memory bound of 200 MiB)") {
		t.Fatalf("summary %q", s)
	}
	r.Violations = []string{"replicas: differ"}
	if s := r.Summary(); !strings.Contains(s, "result=FAIL (1 violations)") {
		t.Fatalf("summary %q", s)
	}
}

// Fencing's end state: every participant at the leader's term, which is
// the highest seen. Planted: a participant behind (it missed, or did not
// keep, the leader's term), one ahead (it kept a term no leader sent),
// and a leader whose term is below one seen earlier.
func TestTermsCheck(t *testing.T) {
	parts := []string{"p1", "p2", "p3"}
	ok := Terms{Leader: 7, Highest: 7, Seen: map[string]uint64{"p1": 7, "p2": 7, "p3": 7}}
	if err := ok.check(parts); err != nil {
		t.Fatalf("a cluster at one term: %v", err)
	}
	for _, c := range []struct {
		name  string
		plant func(*Terms)
		want  string
	}{
		{"behind", func(t *Terms) { t.Seen["p2"] = 6 }, "p2 has seen term 6, the leader's is 7"},
		{"ahead", func(t *Terms) { t.Seen["p3"] = 1000 }, "p3 has seen term 1000"},
		{"never heard", func(t *Terms) { delete(t.Seen, "p1") }, "p1 has seen term 0"},
		{"terms went back", func(t *Terms) { t.Highest = 9 }, "terms went back"},
	} {
		bad := ok
		bad.Seen = maps.Clone(ok.Seen)
		c.plant(&bad)
		if err := bad.check(parts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
