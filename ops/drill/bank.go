package drill

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// bankBalance is each account's starting balance.
const bankBalance = 100

// bank is the bank drill's load: accounts holding integer balances that
// clients move between them, with the total kept constant by every
// transfer, while audits read every account at once. Atomicity and
// isolation show up as arithmetic: any transfer applied in part, or any
// audit that sees one half of a transfer, makes an audit's sum differ
// from the total. The transfer is the README's: read both accounts with
// their versions in a read-only transaction, then write both in one
// transaction whose compares require those versions, and read again when
// another transfer got there first.
//
// Every quietEvery, one more audit runs alone: every other call waits
// (load.gate) until it has returned. Besides the total, such an audit
// fixes the state of every account at a moment when nothing else was in
// flight, where Check cuts the history (see segments): the bank's audits
// link every account into one group, and porcupine's memory grows with
// the square of a group's length (2 GB for 10 minutes, uncut).
type bank struct {
	*load      // clients, connection, history; load.keys are the accounts
	balance    int64
	auditPct   int // share of a client's operations that are audits
	quietEvery time.Duration
}

// createAccounts creates every account with the starting balance in one
// transaction, before the load and the faults start. An attempt of
// unknown outcome is tried again: its compare (the first account does not
// exist yet) makes a second run of it change nothing, and either way the
// accounts then hold the balance. It gives up after timeout.
func (b *bank) createAccounts(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := TxnOp{Compares: []TxnCompare{{Key: b.keys[0], Target: "exists", Op: "==", Exists: false}}}
	for _, a := range b.keys {
		t.Success = append(t.Success, TxnStep{Op: "put", Key: a, Value: strconv.FormatInt(b.balance, 10)})
		t.Failure = append(t.Failure, TxnStep{Op: "get", Key: a})
	}
	c := b.newClient(int(b.nextClient.Add(1) - 1))
	for {
		tc := t
		op := Op{Kind: Transaction, Txn: &tc, Bank: "init"}
		b.issue(ctx, c, &op)
		if op.Outcome == OK {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("drill: bank: could not create the accounts in %v: %s", timeout, op.Err)
		}
	}
}

// run starts the clients and the quiet audits, and returns when ctx ends
// and every call in flight has returned.
func (b *bank) run(ctx context.Context) {
	b.gate = &sync.RWMutex{}
	var wg sync.WaitGroup
	wg.Go(func() { b.quietAudits(ctx) })
	b.load.runClients(ctx, b.client)
	wg.Wait()
}

// quietAudits audits every quietEvery, alone, until ctx ends.
func (b *bank) quietAudits(ctx context.Context) {
	c := b.newClient(int(b.nextClient.Add(1) - 1))
	tick := time.NewTicker(b.quietEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		b.gate.Lock()
		if ctx.Err() == nil { // the load may have ended while it waited
			op := Op{Kind: Transaction, Txn: &TxnOp{Success: b.gets(b.keys...)}, Bank: "audit"}
			b.call(c, &op)
		}
		b.gate.Unlock()
	}
}

// client runs transfers and audits one at a time until ctx ends.
func (b *bank) client(ctx context.Context, id int) {
	c := b.newClient(id)
	for ctx.Err() == nil {
		if c.rng.IntN(100) < b.auditPct {
			op := Op{Kind: Transaction, Txn: &TxnOp{Success: b.gets(b.keys...)}, Bank: "audit"}
			b.issue(ctx, c, &op)
			continue
		}
		i := c.rng.IntN(len(b.keys))
		j := (i + 1 + c.rng.IntN(len(b.keys)-1)) % len(b.keys)
		b.transfer(ctx, c, b.keys[i], b.keys[j], 1+int64(c.rng.IntN(20)))
	}
}

// transfer moves amount (or what src holds, if less) from src to dst:
// read both with their versions, write both on condition that neither
// changed meanwhile, and start again if one did. A call that failed is
// given up (a failed read is tried again: it changed nothing); so is one
// of unknown outcome, which must not be repeated blindly.
func (b *bank) transfer(ctx context.Context, c *client, src, dst string, amount int64) {
	for ctx.Err() == nil {
		read := Op{Kind: Transaction, Txn: &TxnOp{Success: b.gets(src, dst)}, Bank: "read"}
		b.issue(ctx, c, &read)
		if read.Outcome != OK {
			continue
		}
		s, d := read.Txn.Results[0], read.Txn.Results[1]
		sv, err1 := strconv.ParseInt(s.Value, 10, 64)
		dv, err2 := strconv.ParseInt(d.Value, 10, 64)
		if !s.Found || !d.Found || err1 != nil || err2 != nil {
			return // not a bank any more: the audits and final checks say so
		}
		amount = min(amount, sv)
		if amount <= 0 {
			return
		}
		w := Op{Kind: Transaction, Bank: "transfer", Txn: &TxnOp{
			Compares: []TxnCompare{
				{Key: src, Target: "version", Op: "==", Version: s.Version},
				{Key: dst, Target: "version", Op: "==", Version: d.Version},
			},
			Success: []TxnStep{
				{Op: "put", Key: src, Value: strconv.FormatInt(sv-amount, 10)},
				{Op: "put", Key: dst, Value: strconv.FormatInt(dv+amount, 10)},
			},
		}}
		b.issue(ctx, c, &w)
		if w.Outcome != OK || w.Txn.Succeeded {
			return
		}
	}
}

// gets is a branch that reads keys.
func (b *bank) gets(keys ...string) []TxnStep {
	steps := make([]TxnStep, len(keys))
	for i, k := range keys {
		steps[i] = TxnStep{Op: "get", Key: k}
	}
	return steps
}
