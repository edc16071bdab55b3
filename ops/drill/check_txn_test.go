package drill

import "testing"

// Shorthands for transactions in hand-made histories.
func txn(c int, call, ret int64, t TxnOp) Op {
	return Op{Client: c, Kind: Transaction, Txn: &t, Outcome: OK, Call: call, Return: ret}
}
func lost(o Op, out Outcome) Op {
	t := *o.Txn
	t.Succeeded, t.Results = false, nil
	o.Txn, o.Outcome = &t, out
	return o
}
func ifValue(k, op, v string) TxnCompare {
	return TxnCompare{Key: k, Target: "value", Op: op, Value: v}
}
func ifVersion(k, op string, n int64) TxnCompare {
	return TxnCompare{Key: k, Target: "version", Op: op, Version: n}
}
func ifExists(k string, b bool) TxnCompare {
	return TxnCompare{Key: k, Target: "exists", Op: "==", Exists: b}
}
func sPut(k, v string) TxnStep         { return TxnStep{Op: "put", Key: k, Value: v} }
func sGet(k string) TxnStep            { return TxnStep{Op: "get", Key: k} }
func sDel(k string) TxnStep            { return TxnStep{Op: "delete", Key: k} }
func rPut(v int64) TxnResult           { return TxnResult{Version: v} }
func rGot(v string, n int64) TxnResult { return TxnResult{Found: true, Value: v, Version: n} }
func rMissing() TxnResult              { return TxnResult{} }
func rDel(existed bool) TxnResult      { return TxnResult{Existed: existed} }
func withVersion(o Op, n int64) Op     { o.Version = n; return o }

// The transaction model must refuse every history below marked illegal:
// each is a way a broken coordinator or participant could answer. The
// legal ones keep it from crying wolf on what faults really allow.
func TestCheckerVerdictsWithTransactions(t *testing.T) {
	checkVerdicts(t, []verdict{
		{"compare-and-swap, then a get of the new value", []Op{
			put(0, "k", "a", 0, 10),
			txn(0, 20, 30, TxnOp{Compares: []TxnCompare{ifValue("k", "==", "a")}, Success: []TxnStep{sPut("k", "b")},
				Succeeded: true, Results: []TxnResult{rPut(2)}}),
			get(1, "k", "b", 40, 50),
		}, nil},
		{"the success branch ran though its compare could not hold", []Op{
			put(0, "k", "a", 0, 10), put(0, "k", "b", 20, 30),
			txn(1, 40, 50, TxnOp{Compares: []TxnCompare{ifValue("k", "==", "a")}, Success: []TxnStep{sPut("k", "c")},
				Failure: []TxnStep{sGet("k")}, Succeeded: true, Results: []TxnResult{rPut(3)}}),
		}, []string{"k"}},
		{"the failure branch ran and read the state", []Op{
			put(0, "k", "a", 0, 10),
			txn(1, 20, 30, TxnOp{Compares: []TxnCompare{ifExists("k", false)}, Success: []TxnStep{sPut("k", "c")},
				Failure: []TxnStep{sGet("k")}, Results: []TxnResult{rGot("a", 1)}}),
		}, nil},
		{"a get in a txn returns a stale version", []Op{
			put(0, "k", "a", 0, 10), put(0, "k", "b", 20, 30),
			txn(1, 40, 50, TxnOp{Success: []TxnStep{sGet("k")}, Succeeded: true, Results: []TxnResult{rGot("b", 1)}}),
		}, []string{"k"}},
		{"a put's version does not count from the delete", []Op{
			put(0, "k", "a", 0, 10), del(0, "k", true, 20, 30),
			txn(0, 40, 50, TxnOp{Success: []TxnStep{sPut("k", "b")}, Succeeded: true, Results: []TxnResult{rPut(2)}}),
		}, []string{"k"}},
		{"a get in a txn sees the put before it", []Op{
			txn(0, 0, 10, TxnOp{Success: []TxnStep{sPut("k", "a"), sGet("k")}, Succeeded: true,
				Results: []TxnResult{rPut(1), rGot("a", 1)}}),
		}, nil},
		{"fractured read: one txn wrote x and y, a later txn sees the new x and the old y", []Op{
			put(0, "x", "x1", 0, 10), put(0, "y", "y1", 0, 10),
			txn(0, 20, 30, TxnOp{Success: []TxnStep{sPut("x", "x2"), sPut("y", "y2")}, Succeeded: true,
				Results: []TxnResult{rPut(2), rPut(2)}}),
			txn(1, 40, 50, TxnOp{Success: []TxnStep{sGet("x"), sGet("y")}, Succeeded: true,
				Results: []TxnResult{rGot("x2", 2), rGot("y1", 1)}}),
		}, []string{"x", "y"}},
		{"half of an unknown txn reaches the final reads", []Op{
			lost(txn(0, 0, 10, TxnOp{Success: []TxnStep{sPut("x", "x1"), sPut("y", "y1")}}), Unknown),
			at(withVersion(get(10, "x", "x1", 100, 110), 1), "p1"), at(getMissing(11, "y", 100, 110), "p1"),
		}, []string{"x", "y"}},
		{"an unknown txn that took effect whole", []Op{
			lost(txn(0, 0, 10, TxnOp{Success: []TxnStep{sPut("x", "x1"), sPut("y", "y1")}}), Unknown),
			at(withVersion(get(10, "x", "x1", 100, 110), 1), "p1"), at(withVersion(get(10, "y", "y1", 100, 110), 1), "p1"),
		}, nil},
		{"an unknown txn that never took effect", []Op{
			put(0, "x", "x0", 0, 5),
			lost(txn(0, 10, 20, TxnOp{Compares: []TxnCompare{ifVersion("x", "==", 1)}, Success: []TxnStep{sDel("x")}}), Unknown),
			txn(1, 30, 40, TxnOp{Success: []TxnStep{sGet("x")}, Succeeded: true, Results: []TxnResult{rGot("x0", 1)}}),
		}, nil},
		{"a failed txn's write is read", []Op{
			lost(txn(0, 0, 10, TxnOp{Success: []TxnStep{sPut("x", "x1")}}), Failed),
			get(1, "x", "x1", 20, 30),
		}, []string{"x"}},
		{"a delete in a txn reports a value that was not there", []Op{
			txn(0, 0, 10, TxnOp{Success: []TxnStep{sDel("x")}, Succeeded: true, Results: []TxnResult{rDel(true)}}),
		}, []string{"x"}},
		{"a final read's version contradicts the writes", []Op{
			put(0, "k", "a", 0, 10), put(0, "k", "b", 20, 30),
			at(withVersion(get(10, "k", "b", 100, 110), 1), "p1"),
		}, []string{"k"}},
		{"a txn's acknowledged write is lost: a later txn reads the value before it", []Op{
			put(0, "k", "a", 0, 10),
			txn(0, 20, 30, TxnOp{Compares: []TxnCompare{ifVersion("k", "==", 1)}, Success: []TxnStep{sPut("k", "b")},
				Succeeded: true, Results: []TxnResult{rPut(2)}}),
			txn(1, 40, 50, TxnOp{Success: []TxnStep{sGet("k")}, Succeeded: true, Results: []TxnResult{rGot("a", 1)}}),
		}, []string{"k"}},
		{"a txn's acknowledged write is lost: the final reads miss it", []Op{
			txn(0, 0, 10, TxnOp{Success: []TxnStep{sPut("k", "a")}, Succeeded: true, Results: []TxnResult{rPut(1)}}),
			at(getMissing(10, "k", 100, 110), "p1"), at(getMissing(11, "k", 100, 110), "p2"),
		}, []string{"k"}},
		{"an acknowledged txn half-applied: the final reads have its x and not its y", []Op{
			txn(0, 0, 10, TxnOp{Success: []TxnStep{sPut("x", "x1"), sPut("y", "y1")}, Succeeded: true,
				Results: []TxnResult{rPut(1), rPut(1)}}),
			at(withVersion(get(10, "x", "x1", 100, 110), 1), "p1"), at(getMissing(10, "y", 100, 110), "p1"),
		}, []string{"x", "y"}},
		{"an acknowledged txn applied on one replica only", []Op{
			txn(0, 0, 10, TxnOp{Success: []TxnStep{sPut("x", "x1"), sPut("y", "y1")}, Succeeded: true,
				Results: []TxnResult{rPut(1), rPut(1)}}),
			at(withVersion(get(10, "x", "x1", 100, 110), 1), "p1"), at(withVersion(get(10, "y", "y1", 100, 110), 1), "p1"),
			at(getMissing(11, "x", 100, 110), "p2"), at(getMissing(11, "y", 100, 110), "p2"),
		}, []string{"x", "y"}},
		{"the failure branch ran though the compare held", []Op{
			put(0, "k", "a", 0, 10),
			txn(1, 20, 30, TxnOp{Compares: []TxnCompare{ifExists("k", true)}, Success: []TxnStep{sDel("k")},
				Failure: []TxnStep{sGet("k")}, Results: []TxnResult{rGot("a", 1)}}),
		}, []string{"k"}},
		{"a version compare held against a version the key never had then", []Op{
			put(0, "k", "a", 0, 10), put(0, "k", "b", 20, 30),
			txn(1, 40, 50, TxnOp{Compares: []TxnCompare{ifVersion("k", "==", 1)}, Success: []TxnStep{sPut("k", "c")},
				Succeeded: true, Results: []TxnResult{rPut(3)}}),
		}, []string{"k"}},
		{"only the keys a bad txn links are named", []Op{
			put(0, "z", "z1", 0, 10), get(1, "z", "z1", 20, 30),
			txn(0, 0, 10, TxnOp{Success: []TxnStep{sPut("x", "x1"), sPut("y", "y1")}, Succeeded: true, Results: []TxnResult{rPut(1), rPut(1)}}),
			txn(1, 20, 30, TxnOp{Success: []TxnStep{sGet("x"), sGet("y")}, Succeeded: true, Results: []TxnResult{rGot("x1", 1), rMissing()}}),
		}, []string{"x", "y"}},
	})
}

// Unknown writes are first taken to have taken effect during their call or
// never, which needs no search; only a group that this does not explain is
// searched in full, with each unknown write free to take effect at any
// time after its call. These need that search, and it must neither accept
// what no unknown write explains nor let one take effect twice.
func TestCheckerSearchesForUnknownWritesThatTookEffectLate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ops   []Op
		legal bool
	}{
		{"an unknown delete that took effect after its call returned, after a put", []Op{
			put(0, "k", "a", 0, 10),
			outcome(del(1, "k", false, 20, 30), Unknown),
			put(0, "k", "b", 40, 50),
			getMissing(2, "k", 60, 70),
		}, true},
		{"an unknown put that took effect after its call returned, seen only in versions", []Op{
			put(0, "k", "a", 0, 10),
			outcome(put(1, "k", "b", 20, 30), Unknown),
			txn(2, 40, 50, TxnOp{Success: []TxnStep{sGet("k")}, Succeeded: true, Results: []TxnResult{rGot("a", 1)}}),
			txn(2, 60, 70, TxnOp{Success: []TxnStep{sPut("k", "c")}, Succeeded: true, Results: []TxnResult{rPut(3)}}),
		}, true},
		{"an unknown txn that took effect after a later txn, seen in the final reads' versions", []Op{
			lost(txn(0, 0, 10, TxnOp{Success: []TxnStep{sDel("x"), sPut("y", "y0")}}), Unknown),
			txn(1, 20, 30, TxnOp{Success: []TxnStep{sPut("x", "x1"), sGet("y")}, Succeeded: true, Results: []TxnResult{rPut(1), rMissing()}}),
			txn(1, 40, 50, TxnOp{Success: []TxnStep{sPut("y", "y1")}, Succeeded: true, Results: []TxnResult{rPut(2)}}),
			at(getMissing(10, "x", 100, 110), "p1"), at(withVersion(get(10, "y", "y1", 100, 110), 2), "p1"),
		}, true},
		{"versions count a write too many, and the write was refused", []Op{
			put(0, "k", "a", 0, 10),
			outcome(put(1, "k", "b", 20, 30), Failed),
			outcome(del(1, "z", false, 20, 30), Unknown), // an unknown write elsewhere, to make it search
			txn(2, 40, 50, TxnOp{Success: []TxnStep{sGet("k")}, Succeeded: true, Results: []TxnResult{rGot("a", 1)}}),
			txn(2, 60, 70, TxnOp{Success: []TxnStep{sPut("k", "c"), sGet("z")}, Succeeded: true, Results: []TxnResult{rPut(3), rMissing()}}),
		}, false},
		{"an unknown write cannot take effect twice", []Op{
			put(0, "k", "a", 0, 10),
			outcome(put(1, "k", "b", 20, 30), Unknown),
			txn(2, 40, 50, TxnOp{Success: []TxnStep{sPut("k", "c")}, Succeeded: true, Results: []TxnResult{rPut(3)}}),
			txn(2, 60, 70, TxnOp{Success: []TxnStep{sPut("k", "d")}, Succeeded: true, Results: []TxnResult{rPut(5)}}),
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Check(History{Ops: tc.ops}, 0)
			if v.Linearizable() != tc.legal || !tc.legal && !v.Illegal() {
				t.Fatalf("Check = %v, want linearizable %v", v.Result, tc.legal)
			}
			if v.Searched != 1 {
				t.Fatalf("%d groups searched in full, want 1: %v", v.Searched, v)
			}
		})
	}
}

// readAll is a read-only txn of keys that returned results.
func readAll(c int, call, ret int64, keys []string, results ...TxnResult) Op {
	var steps []TxnStep
	for _, k := range keys {
		steps = append(steps, sGet(k))
	}
	return txn(c, call, ret, TxnOp{Success: steps, Succeeded: true, Results: results})
}

// A transaction that reads every key of its group and overlaps no other
// operation cuts the group's history in two: the part after it starts
// from the state it read. The cut must be exact: the versions after it
// count on from what it read, and a read after it that contradicts it is
// caught in its segment.
func TestCheckerCutsAtIsolatedReadsOfEveryKey(t *testing.T) {
	xy := []string{"x", "y"}
	link := txn(1, 5, 15, TxnOp{Success: []TxnStep{sPut("y", "y1"), sGet("x")}, Succeeded: true, Results: []TxnResult{rPut(1), rGot("x1", 1)}})
	cut := readAll(2, 20, 30, xy, rGot("x1", 1), rGot("y1", 1))
	for _, tc := range []struct {
		name     string
		ops      []Op
		segments int
		legal    bool
	}{
		{"versions count on from the cut", []Op{
			put(0, "x", "x1", 0, 10), link, cut,
			txn(0, 40, 50, TxnOp{Success: []TxnStep{sPut("x", "x2")}, Succeeded: true, Results: []TxnResult{rPut(2)}}),
			readAll(1, 45, 55, xy, rGot("x2", 2), rGot("y1", 1)), // overlaps the put: no cut
			at(withVersion(get(10, "x", "x2", 100, 110), 2), "p1"), at(withVersion(get(10, "y", "y1", 100, 110), 1), "p1"),
		}, 2, true},
		{"a read after the cut contradicts it", []Op{
			put(0, "x", "x1", 0, 10), link, cut,
			readAll(1, 40, 50, xy, rGot("x1", 2), rGot("y1", 1)),
		}, 2, false},
		{"a read of one key only is no cut", []Op{
			put(0, "x", "x1", 0, 10), link, readAll(2, 20, 30, []string{"x"}, rGot("x1", 1)),
			readAll(1, 40, 50, xy, rGot("x1", 1), rGot("y1", 1)),
		}, 1, true},
		{"a read that overlaps another operation is no cut", []Op{
			put(0, "x", "x1", 0, 10), link, readAll(2, 20, 30, xy, rGot("x1", 1), rGot("y1", 1)),
			get(3, "x", "x1", 25, 35), readAll(1, 40, 50, xy, rGot("x1", 1), rGot("y1", 1)),
		}, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Check(History{Ops: tc.ops}, 0)
			if v.Linearizable() != tc.legal || !tc.legal && !v.Illegal() {
				t.Fatalf("Check = %v, want linearizable %v", v, tc.legal)
			}
			if tc.legal && v.Segments != tc.segments {
				t.Fatalf("%d segments, want %d", v.Segments, tc.segments)
			}
			m := newModel(tc.ops)
			ops, _, _ := toPorcupine(tc.ops, m)
			if segs, _ := m.segments(ops); len(segs) != tc.segments {
				t.Fatalf("%d segments, want %d", len(segs), tc.segments)
			}
		})
	}
}
