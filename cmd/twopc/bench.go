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
	"time"

	"github.com/twopc/twopc/api"
	"github.com/twopc/twopc/internal/rpc"
)

// runBench drives a running coordinator and prints one summary line.
func runBench(args []string) error {
	fs, o := clientFlags("bench", "[flags]", "Drive a running coordinator with concurrent clients and print throughput and latency")
	clients := fs.Int("clients", 1, "concurrent clients, each with one call in flight")
	duration := fs.Duration("duration", 10*time.Second, "how long to run")
	op := fs.String("op", "put", "put, get or mix (half each)")
	keySize := fs.Int("key-size", 8, "key length in bytes")
	valueSize := fs.Int("value-size", 64, "value length in bytes")
	keys := fs.Int("keys", 100000, "number of distinct keys")
	peerTokenFile := fs.String("peer-token-file", "", "peer token, to read the participants' fsync counters (or set "+envPeerToken+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *op != "put" && *op != "get" && *op != "mix" {
		return fmt.Errorf("--op %q: want put, get or mix", *op)
	}
	if *clients < 1 || *keys < 1 || *keySize < 1 {
		return errors.New("--clients, --keys and --key-size must be positive")
	}
	if *valueSize < 0 || *duration <= 0 {
		return errors.New("--value-size must not be negative, and --duration must be positive")
	}
	key := func(i int) string { return fmt.Sprintf("%0*d", *keySize, i%*keys)[:*keySize] }
	value := fmt.Sprintf("%-*s", *valueSize, "v")[:*valueSize]
	c, traffic, err := o.meteredClient()
	if err != nil {
		return err
	}
	timeout := &o.timeout
	if *op != "put" { // gets need keys to find
		for i := range min(*keys, 1000) {
			ctx, cancel := context.WithTimeout(context.Background(), *timeout)
			_, err := c.Call(ctx, "put", key(i), value)
			cancel()
			if err != nil {
				return fmt.Errorf("preloading keys: %w", err)
			}
		}
		*keys = min(*keys, 1000)
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
		lat    []time.Duration
		faults = map[string]int{}
		wg     sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(*duration)
	for w := range *clients {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			var mine []time.Duration
			errs := map[string]int{}
			for time.Now().Before(end) {
				k := key(r.IntN(*keys))
				method, args := "put", []any{k, value}
				if *op == "get" || (*op == "mix" && r.IntN(2) == 0) {
					method, args = "get", []any{k}
				}
				t0 := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), *timeout)
				_, err := c.Call(ctx, method, args...)
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
			}
			mu.Lock()
			lat = append(lat, mine...)
			for k, v := range errs {
				faults[k] += v
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }
	fmt.Printf("twopc op=%s clients=%d key=%dB value=%dB ops=%d ops/s=%.0f p50=%s p90=%s p99=%s max=%s errors=%v",
		*op, *clients, *keySize, *valueSize, len(lat), float64(len(lat))/elapsed.Seconds(),
		ms(pct(0.50)), ms(pct(0.90)), ms(pct(0.99)), ms(pct(1)), faults)
	sent1, recv1 := traffic.Bytes()
	if n := float64(len(lat)); n > 0 {
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
// SQLite commits (one WAL fsync each) through status and stats. It
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
		n, ok := get(rpc.NewClient(p.URL, peers), "stats")["batches"].(int64)
		if !ok {
			return nil
		}
		out = append(out, fsyncCount{name: p.Name, n: n})
	}
	return out
}
