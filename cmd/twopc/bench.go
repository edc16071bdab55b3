package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twopc/twopc/api"
	"github.com/twopc/twopc/internal/rpc"
)

// runBench drives a running coordinator and prints one summary line.
func runBench(args []string) error {
	fs, o := clientFlags("bench", "[flags]", "Drive a running coordinator with concurrent clients and print throughput and latency")
	clients := fs.Int("clients", 1, "concurrent clients, each with one call in flight")
	duration := fs.Duration("duration", 10*time.Second, "how long to run")
	op := fs.String("op", "put", "put, get, mix (half each), txn (a txn of --txn-ops puts on distinct keys) or multicall (a system.multicall of --txn-ops puts)")
	txnOps := fs.Int("txn-ops", 8, "puts per txn or per system.multicall, for --op txn and --op multicall")
	keySize := fs.Int("key-size", 8, "key length in bytes")
	valueSize := fs.Int("value-size", 64, "value length in bytes")
	keys := fs.Int("keys", 100000, "number of distinct keys")
	preload := fs.Bool("preload", true, "for --op get and mix: first put the keys the gets read (false: an earlier run put them)")
	peerTokenFile := fs.String("peer-token-file", "", "peer token, to read the participants' fsync counters (or set "+envPeerToken+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *op != "put" && *op != "get" && *op != "mix" && *op != "txn" && *op != "multicall" {
		return fmt.Errorf("--op %q: want put, get, mix, txn or multicall", *op)
	}
	if (*op == "txn" || *op == "multicall") && (*txnOps < 1 || *txnOps > *keys) {
		return errors.New("--txn-ops must be between 1 and --keys")
	}
	if *clients < 1 || *keys < 1 || *keySize < 1 {
		return errors.New("--clients, --keys and --key-size must be positive")
	}
	if *valueSize < 0 || *duration <= 0 {
		return errors.New("--value-size must not be negative, and --duration must be positive")
	}
	key := func(i int) string { return fmt.Sprintf("%0*d", *keySize, i%*keys)[:*keySize] }
	value := fmt.Sprintf("%-*s", *valueSize, "v")[:*valueSize]
	o.direct = true
	c, traffic, err := o.meteredClient()
	if err != nil {
		return err
	}
	// The load generator shares the cores with the servers: encode its
	// calls without kolo's reflection, as the coordinator does its own.
	c = c.OwnEncoder()
	timeout := &o.timeout
	if *op == "get" || *op == "mix" { // gets need keys to find
		*keys = min(*keys, 1000)
	}
	if (*op == "get" || *op == "mix") && *preload {
		for i := range *keys {
			ctx, cancel := context.WithTimeout(context.Background(), *timeout)
			_, err := c.Call(ctx, "put", key(i), value)
			cancel()
			if err != nil {
				return fmt.Errorf("preloading keys: %w", err)
			}
		}
	}

	peerToken, err := loadSecret(*peerTokenFile, envPeerToken)
	if err != nil {
		return err
	}
	peers := rpc.WithToken(nil, peerToken)
	before := fsyncCounts(c, peers, *timeout)
	sent0, recv0 := traffic.Bytes()
	var (
		mu     sync.Mutex
		lat    []time.Duration // per call
		ops    int             // puts, gets or txns that succeeded: a multicall's entries count one each
		faults = map[string]int{}
		wg     sync.WaitGroup
	)
	cpu0 := selfCPU()
	start := time.Now()
	end := start.Add(*duration)
	for w := range *clients {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			var mine []time.Duration
			done := 0
			errs := map[string]int{}
			for time.Now().Before(end) {
				k := key(r.IntN(*keys))
				method, args := "put", []any{k, value}
				switch {
				case *op == "get" || (*op == "mix" && r.IntN(2) == 0):
					method, args = "get", []any{k}
				case *op == "txn":
					method, args = "txn", []any{[]any{}, txnPuts(r, *txnOps, *keys, key, value)}
				case *op == "multicall":
					method, args = "system.multicall", []any{multicallPuts(r, *txnOps, *keys, key, value)}
				}
				t0 := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), *timeout)
				res, err := c.Call(ctx, method, args...)
				cancel()
				if err != nil {
					var f *rpc.Fault
					if errors.As(err, &f) {
						errs[fmt.Sprintf("fault %d", f.Code)]++
					} else {
						errs["transport"]++
					}
					continue
				}
				mine = append(mine, time.Since(t0))
				if *op == "multicall" {
					done += countMulticall(res, errs)
				} else {
					done++
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			ops += done
			for k, v := range errs {
				faults[k] += v
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := selfCPU() - cpu0
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }
	name := *op
	if *op == "txn" || *op == "multicall" {
		name = fmt.Sprintf("%s%d", *op, *txnOps)
	}
	fmt.Printf("twopc op=%s clients=%d key=%dB value=%dB ops=%d ops/s=%.0f p50=%s p90=%s p99=%s max=%s errors=%v cpu=%.3fs",
		name, *clients, *keySize, *valueSize, ops, float64(ops)/elapsed.Seconds(),
		ms(pct(0.50)), ms(pct(0.90)), ms(pct(0.99)), ms(pct(1)), faults, cpu.Seconds())
	sent1, recv1 := traffic.Bytes()
	if n := float64(ops); n > 0 {
		fmt.Printf(" bytes/op: client<->coordinator=%.0f", float64(sent1-sent0+recv1-recv0)/n)
		fmt.Print(perOp(before, fsyncCounts(c, peers, *timeout), n))
	}
	fmt.Println()
	return nil
}

// perOp formats the coordinator-participant traffic and fsyncs per
// operation between two readings of the counters, or says why there are
// none (a reading failed: no peer token, say).
func perOp(before, after []fsyncCount, ops float64) string {
	if len(before) == 0 || len(after) != len(before) {
		return " (fsyncs/op unavailable: the participants' counters need the peer token, --peer-token-file or " + envPeerToken + ")"
	}
	var b strings.Builder
	fmt.Fprintf(&b, " coordinator<->participants=%.0f fsyncs/op:", float64(after[0].wire-before[0].wire)/ops)
	for i, a := range after {
		fmt.Fprintf(&b, " %s=%.2f", a.name, float64(a.n-before[i].n)/ops)
	}
	return b.String()
}

type fsyncCount struct {
	name string
	n    int64
	wire int64 // coordinator only: XML bytes exchanged with all participants
}

// fsyncCounts reads the coordinator's log fsyncs and each participant's
// (its vote log's and SQLite's) through status and stats. It
// returns nil if any of them cannot be read: the figures are then left out.
func fsyncCounts(c *rpc.Client, peers *http.Client, timeout time.Duration) []fsyncCount {
	get := func(c *rpc.Client, method string) map[string]any {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		res, _ := c.Call(ctx, method)
		m, _ := res.(map[string]any)
		return m
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := c.Call(ctx, "status")
	if err != nil {
		return nil
	}
	st, err := api.DecodeStatus(res)
	if err != nil || st.Log == nil {
		return nil
	}
	out := []fsyncCount{{name: "coordinator", n: int64(st.Log.Fsyncs)}}
	for _, p := range st.Participants {
		out[0].wire += p.BytesSent + p.BytesReceived
		stats := get(rpc.NewClient(p.URL, peers), "stats")
		n, ok := stats["fsyncs"].(int64)
		if !ok { // an older participant: one SQLite commit a batch
			n, ok = stats["batches"].(int64)
		}
		if !ok {
			return nil
		}
		out = append(out, fsyncCount{name: p.Name, n: n})
	}
	return out
}

// selfCPU is the CPU time this process has used so far (user and
// system): the load generator shares the cores with the servers, so its
// own cost is part of the figures.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// multicallPuts is a system.multicall that puts value under n distinct
// random keys, each put its own transaction.
func multicallPuts(r *rand.Rand, n, keys int, key func(int) string, value string) []any {
	calls := make([]any, 0, n)
	for _, p := range txnPuts(r, n, keys, key, value) {
		m := p.(map[string]any)
		calls = append(calls, map[string]any{"methodName": "put", "params": []any{m["key"], m["value"]}})
	}
	return calls
}

// countMulticall returns how many entries of a multicall reply succeeded
// and counts the faults of the others in errs.
func countMulticall(res any, errs map[string]int) int {
	list, _ := res.([]any)
	n := 0
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			code, _ := m["faultCode"].(int64)
			errs[fmt.Sprintf("fault %d", code)]++
			continue
		}
		n++
	}
	return n
}

// txnPuts is the success branch of a txn that puts value under n
// distinct random keys (a key may be written once per branch).
func txnPuts(r *rand.Rand, n, keys int, key func(int) string, value string) []any {
	ops := make([]any, 0, n)
	seen := map[int]bool{}
	for len(ops) < n {
		i := r.IntN(keys)
		if !seen[i] {
			seen[i] = true
			ops = append(ops, map[string]any{"op": "put", "key": key(i), "value": value})
		}
	}
	return ops
}
