package drill

import "fmt"

// drawTxn draws a transaction over one or more of keys (a group of the
// load's): up to two compares on value, version or existence, a success
// branch of one op per key (put, delete or get) and sometimes a get after
// a put of the same key, and, when there are compares, usually a failure
// branch. Compares use what the client last read of a key, so that they
// hold often enough for both branches to run; failure branches mostly
// read, which pins down the state for the checker (an answer with
// versions leaves porcupine few orders to try). Every put writes a value
// no other put writes. n is the client's operation counter.
func (c *client) drawTxn(keys []string, n int) *TxnOp {
	nk := 1 + c.rng.IntN(len(keys))
	picked := make([]string, 0, nk)
	for _, i := range c.rng.Perm(len(keys))[:nk] {
		picked = append(picked, keys[i])
	}
	t := &TxnOp{}
	for range c.rng.IntN(3) {
		t.Compares = append(t.Compares, c.drawCompare(picked[c.rng.IntN(nk)]))
	}
	vals := 0
	value := func() string {
		vals++
		return fmt.Sprintf("c%d.%d.%d", c.id0, n, vals)
	}
	t.Success = c.drawBranch(picked, 45, value)
	if len(t.Compares) > 0 && c.rng.IntN(4) != 0 {
		t.Failure = c.drawBranch(picked, 85, value)
	}
	return t
}

// drawBranch draws one op per key, in a random order: a get with
// probability getPct percent, else a put (three times in four) or a
// delete. A put is followed by a get of its key one time in four.
func (c *client) drawBranch(keys []string, getPct int, value func() string) []TxnStep {
	var ops []TxnStep
	for _, i := range c.rng.Perm(len(keys)) {
		k := keys[i]
		switch r := c.rng.IntN(100); {
		case r < getPct:
			ops = append(ops, TxnStep{Op: "get", Key: k})
		case c.rng.IntN(4) != 0:
			ops = append(ops, TxnStep{Op: "put", Key: k, Value: value()})
			if c.rng.IntN(4) == 0 {
				ops = append(ops, TxnStep{Op: "get", Key: k})
			}
		default:
			ops = append(ops, TxnStep{Op: "delete", Key: k})
		}
	}
	return ops
}

var cmpOps = []string{"==", "!=", "<", ">"}

// drawCompare draws a compare on key k, mostly against what the client
// last saw of it.
func (c *client) drawCompare(k string) TxnCompare {
	seen := c.seen[k]
	op := "=="
	if c.rng.IntN(3) == 0 {
		op = cmpOps[c.rng.IntN(len(cmpOps))]
	}
	switch c.rng.IntN(3) {
	case 0:
		v := seen.value
		if !seen.found || c.rng.IntN(5) == 0 {
			v = fmt.Sprintf("c%d", c.rng.IntN(8))
		}
		return TxnCompare{Key: k, Target: "value", Op: op, Value: v}
	case 1:
		v := seen.version
		if c.rng.IntN(5) == 0 {
			v = int64(c.rng.IntN(4))
		}
		return TxnCompare{Key: k, Target: "version", Op: op, Version: v}
	}
	if op != "==" {
		op = "!="
	}
	return TxnCompare{Key: k, Target: "exists", Op: op, Exists: seen.found}
}

// learn remembers what an operation that returned showed of its keys.
func (c *client) learn(o Op) {
	if o.Outcome != OK {
		return
	}
	switch o.Kind {
	case Get:
		c.seen[o.Key] = entry{found: o.Found, value: o.Value, version: c.seen[o.Key].version}
	case Put:
		c.seen[o.Key] = entry{found: true, value: o.Value, version: c.seen[o.Key].version + 1}
	case Delete:
		c.seen[o.Key] = entry{}
	case Transaction:
		for i, s := range o.Txn.ran() {
			r := o.Txn.Results[i]
			switch s.Op {
			case "get":
				c.seen[s.Key] = entry{found: r.Found, value: r.Value, version: r.Version}
			case "put":
				c.seen[s.Key] = entry{found: true, value: s.Value, version: r.Version}
			case "delete":
				c.seen[s.Key] = entry{}
			}
		}
	}
}
