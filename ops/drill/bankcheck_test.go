package drill

import (
	"strconv"
	"strings"
	"testing"
)

// A bank of three accounts of 100 each, in hand-made histories.
var accounts = []string{"a0", "a1", "a2"}

func bankInit() Op {
	t := TxnOp{Compares: []TxnCompare{ifExists("a0", false)}}
	for _, a := range accounts {
		t.Success = append(t.Success, sPut(a, "100"))
		t.Failure = append(t.Failure, sGet(a))
	}
	t.Succeeded, t.Results = true, []TxnResult{rPut(1), rPut(1), rPut(1)}
	o := txn(0, 0, 10, t)
	o.Bank = "init"
	return o
}

// transfer is a successful transfer of amount from a0 (at version v0,
// holding b0) to a1 (at v1, holding b1).
func transfer(c int, call, ret int64, b0, v0, b1, v1, amount int64) Op {
	o := txn(c, call, ret, TxnOp{
		Compares:  []TxnCompare{ifVersion("a0", "==", v0), ifVersion("a1", "==", v1)},
		Success:   []TxnStep{sPut("a0", strconv.FormatInt(b0-amount, 10)), sPut("a1", strconv.FormatInt(b1+amount, 10))},
		Succeeded: true, Results: []TxnResult{rPut(v0 + 1), rPut(v1 + 1)},
	})
	o.Bank = "transfer"
	return o
}

// audit is an audit that read the balances (value, version) of a0, a1, a2.
func audit(c int, call, ret int64, balances ...TxnResult) Op {
	o := txn(c, call, ret, TxnOp{Success: []TxnStep{sGet("a0"), sGet("a1"), sGet("a2")}, Succeeded: true, Results: balances})
	o.Bank = "audit"
	return o
}

// finals are the final reads of every account at replica r.
func finals(r string, balances ...TxnResult) []Op {
	var ops []Op
	for i, b := range balances {
		o := withVersion(get(10, accounts[i], b.Value, 100, 110), b.Version)
		o.Found = b.Found
		ops = append(ops, at(o, r))
	}
	return ops
}

// CheckBank must refuse every history below that breaks the total, and
// name what broke it; a correct history passes, and so does the
// linearizability check, which catches what sums cannot.
func TestCheckBank(t *testing.T) {
	moved := []TxnResult{rGot("70", 2), rGot("130", 2), rGot("100", 1)}
	for _, tc := range []struct {
		name string
		ops  []Op
		want []string // substrings of the violations, in order; nil: none
	}{
		{"a transfer, audited, and replicas that agree", append([]Op{
			bankInit(), transfer(1, 20, 30, 100, 1, 100, 1, 30), audit(2, 40, 50, moved...),
		}, append(finals("p1", moved...), finals("p2", moved...)...)...), nil},
		{"an audit sees the debit and not the credit", []Op{
			bankInit(), transfer(1, 20, 30, 100, 1, 100, 1, 30),
			audit(2, 40, 50, rGot("70", 2), rGot("100", 1), rGot("100", 1)),
		}, []string{"audit by client 2", "does not add up", "sum 270, total 300"}},
		{"an audit finds an account missing", []Op{
			bankInit(), audit(2, 40, 50, rGot("100", 1), rMissing(), rGot("100", 1)),
		}, []string{"a1 missing"}},
		{"an audit finds a negative balance", []Op{
			bankInit(), audit(2, 40, 50, rGot("-20", 2), rGot("220", 2), rGot("100", 1)),
		}, []string{"a0 is negative"}},
		{"a replica lost a transfer's credit: its total differs", append([]Op{
			bankInit(), transfer(1, 20, 30, 100, 1, 100, 1, 30),
		}, append(finals("p1", moved...), finals("p2", rGot("70", 2), rGot("100", 1), rGot("100", 1))...)...),
			[]string{"final reads at p2", "sum 270, total 300"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tally, violations := CheckBank(History{Ops: tc.ops})
			if tally.Accounts != 3 || tally.Total != 300 {
				t.Fatalf("tally %v: want 3 accounts, total 300", tally)
			}
			if tc.want == nil {
				if len(violations) > 0 {
					t.Fatalf("violations %q in a correct history", violations)
				}
				if v := Check(History{Ops: tc.ops}, 0); !v.Linearizable() {
					t.Fatalf("Check = %v", v)
				}
				return
			}
			if len(violations) != 1 {
				t.Fatalf("violations %q, want one", violations)
			}
			for _, w := range tc.want {
				if !strings.Contains(violations[0], w) {
					t.Fatalf("violation %q does not say %q", violations[0], w)
				}
			}
		})
	}
}

// Sums cannot see an audit that reads an older state than an earlier
// audit did, or a transfer that was acknowledged and then lost whole:
// every total is right. The linearizability check sees both.
func TestBankHistoriesOnlyCheckCatches(t *testing.T) {
	before := []TxnResult{rGot("100", 1), rGot("100", 1), rGot("100", 1)}
	after := []TxnResult{rGot("70", 2), rGot("130", 2), rGot("100", 1)}
	for _, tc := range []struct {
		name string
		ops  []Op
	}{
		{"a stale audit after a fresh one", []Op{
			bankInit(), transfer(1, 20, 30, 100, 1, 100, 1, 30), audit(2, 40, 50, after...), audit(3, 60, 70, before...),
		}},
		{"an acknowledged transfer lost at every replica", append([]Op{
			bankInit(), transfer(1, 20, 30, 100, 1, 100, 1, 30),
		}, append(finals("p1", before...), finals("p2", before...)...)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := History{Ops: tc.ops}
			if _, violations := CheckBank(h); len(violations) > 0 {
				t.Fatalf("CheckBank: %q (the sums are right here)", violations)
			}
			if v := Check(h, 0); !v.Illegal() {
				t.Fatalf("Check = %v, want Illegal", v)
			}
		})
	}
}

func TestCheckBankCountsTransfersAndAudits(t *testing.T) {
	retried := transfer(1, 20, 30, 100, 1, 100, 1, 30)
	retried.Txn.Succeeded, retried.Txn.Results = false, nil
	failed := lost(transfer(1, 40, 50, 100, 1, 100, 1, 30), Failed)
	unknown := lost(transfer(1, 60, 70, 100, 1, 100, 1, 30), Unknown)
	tally, violations := CheckBank(History{Ops: []Op{bankInit(), retried, failed, unknown, lost(audit(2, 80, 90), Unknown),
		audit(2, 100, 110, rGot("100", 1), rGot("100", 1), rGot("100", 1))}})
	if len(violations) > 0 {
		t.Fatal(violations)
	}
	want := BankTally{Accounts: 3, Total: 300, TransfersRetried: 1, TransfersFailed: 1, TransfersUnknown: 1, AuditsOK: 1, AuditsUnknown: 1}
	if tally != want {
		t.Fatalf("tally %+v, want %+v", tally, want)
	}
}

// A history with no bank in it cannot pass as a bank that kept its total.
func TestCheckBankWithoutAccounts(t *testing.T) {
	if _, violations := CheckBank(History{Ops: []Op{put(0, "k", "a", 0, 10)}}); len(violations) != 1 {
		t.Fatalf("violations %q, want one", violations)
	}
}
