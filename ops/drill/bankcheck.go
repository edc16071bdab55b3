package drill

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// BankTally is what a bank drill's clients did, counted from its history.
type BankTally struct {
	Accounts int
	Total    int64 // what every audit and every replica must sum to
	// Transfers by outcome: OK (moved the money), Retried (a compare
	// failed because another transfer changed an account after the read;
	// read again), Failed (fault 2 or 3: nothing moved), Unknown.
	TransfersOK, TransfersRetried, TransfersFailed, TransfersUnknown int
	AuditsOK                                                         int // audits that returned (and were checked)
	AuditsFailed, AuditsUnknown                                      int
	BadAudits                                                        int // audits whose sum was not the total
}

func (t BankTally) String() string {
	return fmt.Sprintf("bank: %d accounts, total %d; transfers ok=%d retried=%d failed=%d unknown=%d; audits ok=%d (bad %d) failed=%d unknown=%d",
		t.Accounts, t.Total, t.TransfersOK, t.TransfersRetried, t.TransfersFailed, t.TransfersUnknown, t.AuditsOK, t.BadAudits, t.AuditsFailed, t.AuditsUnknown)
}

// CheckBank checks a bank drill's history against the bank's one
// invariant, the total: it takes the accounts and the total from the
// operation that created them (Bank "init"), and requires every audit
// that returned to have found every account and to sum to the total, and
// the final reads at each replica likewise. It is independent of Check:
// it holds whatever porcupine concludes, and it reads the arithmetic a
// reader can check by hand. It returns the tally and one violation per
// broken audit (at most a few, then a count) and per broken replica.
func CheckBank(h History) (BankTally, []string) {
	var t BankTally
	var accounts []string
	for _, o := range h.Ops {
		if o.Bank == "init" && o.Txn != nil {
			accounts = nil
			t.Total = 0
			for _, s := range o.Txn.Success {
				n, _ := strconv.ParseInt(s.Value, 10, 64)
				accounts = append(accounts, s.Key)
				t.Total += n
			}
		}
	}
	if accounts == nil {
		return t, []string{"bank: the history has no operation that created the accounts"}
	}
	t.Accounts = len(accounts)
	var violations []string
	bad := func(format string, args ...any) {
		if t.BadAudits <= 5 {
			violations = append(violations, fmt.Sprintf(format, args...))
		}
	}
	finals := map[string][]Op{} // replica -> its final reads of accounts
	for _, o := range h.Ops {
		switch {
		case o.Replica != "":
			if slices.Contains(accounts, o.Key) {
				finals[o.Replica] = append(finals[o.Replica], o)
			}
		case o.Bank == "transfer":
			switch {
			case o.Outcome == OK && o.Txn.Succeeded:
				t.TransfersOK++
			case o.Outcome == OK:
				t.TransfersRetried++
			case o.Outcome == Failed:
				t.TransfersFailed++
			default:
				t.TransfersUnknown++
			}
		case o.Bank == "audit" && o.Outcome == Failed:
			t.AuditsFailed++
		case o.Bank == "audit" && o.Outcome == Unknown:
			t.AuditsUnknown++
		case o.Bank == "audit":
			t.AuditsOK++
			reads := make([]Op, len(o.Txn.ran()))
			for i, s := range o.Txn.ran() {
				r := o.Txn.Results[i]
				reads[i] = Op{Key: s.Key, Found: r.Found, Value: r.Value, Version: r.Version}
			}
			if sum, err := balance(reads, accounts, t.Total); err != nil {
				t.BadAudits++
				bad("bank: audit by client %d at %v %s (sum %d, total %d)", o.Client, time.Duration(o.Call).Round(time.Millisecond), err, sum, t.Total)
			}
		}
	}
	if t.BadAudits > 5 {
		violations = append(violations, fmt.Sprintf("bank: %d audits in all did not add up to the total", t.BadAudits))
	}
	names := make([]string, 0, len(finals))
	for r := range finals {
		names = append(names, r)
	}
	slices.Sort(names)
	for _, r := range names {
		if sum, err := balance(finals[r], accounts, t.Total); err != nil {
			violations = append(violations, fmt.Sprintf("bank: the final reads at %s %s (sum %d, total %d)", r, err, sum, t.Total))
		}
	}
	return t, violations
}

// balance sums reads of the accounts; the error says what is wrong: an
// account missing, not a number or negative, a sum that is not total.
func balance(reads []Op, accounts []string, total int64) (int64, error) {
	var sum int64
	var seen []string
	var problems []string
	for _, r := range reads {
		n, err := strconv.ParseInt(r.Value, 10, 64)
		switch {
		case !r.Found:
			problems = append(problems, fmt.Sprintf("%s missing", r.Key))
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s=%q is not a balance", r.Key, r.Value))
		case n < 0:
			// A transfer moves at most what its source held when read, on
			// condition that it has not changed since.
			problems = append(problems, fmt.Sprintf("%s is negative", r.Key))
			sum += n
		default:
			sum += n
		}
		seen = append(seen, fmt.Sprintf("%s=%s@v%d", r.Key, r.Value, r.Version))
	}
	if len(reads) != len(accounts) {
		problems = append(problems, fmt.Sprintf("read %d accounts of %d", len(reads), len(accounts)))
	}
	if sum != total && len(problems) == 0 {
		problems = append(problems, "does not add up")
	}
	if len(problems) == 0 {
		return sum, nil
	}
	return sum, fmt.Errorf("%s: %s", strings.Join(problems, ", "), strings.Join(seen, " "))
}
