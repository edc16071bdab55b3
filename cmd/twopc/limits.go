package main

import (
	"flag"
	"os"
	"runtime/debug"

	"github.com/twopc/twopc/internal/rpc"
)

// peerOnlyBodyBytes bounds the body of a request to the coordinator that
// presents the peer token but not the client token: the one method it may
// call, tx.outcome(txid), takes a few hundred bytes.
const peerOnlyBodyBytes = 16 << 10

// participantBodyBytes is a participant's default body limit: the largest
// batch a coordinator with default limits sends. Its batcher closes a
// batch once the calls' keys and values reach 1 MiB, so a batch holds at
// most 1 MiB plus one more put (a 1 MiB value and two 1 KiB keys), and XML
// writes each byte in at most 5 (&amp;) and each call's tags in less: about
// 10 MiB, rounded up.
const participantBodyBytes = 16 << 20

// Participants' defaults. Their replies go to the coordinator, which
// reads up to 64 MiB (read batches carry values); they are called by
// one coordinator, with a few batches in flight.
const (
	participantReplyBytes    = 64 << 20
	participantInflightBytes = 32 << 20
)

// limitFlags adds the flags of the limits every server has.
func limitFlags(fs *flag.FlagSet, lim *rpc.Limits) {
	fs.Int64Var(&lim.MaxReplyBytes, "max-reply-bytes", lim.MaxReplyBytes,
		"largest reply sent, fault 4 past it; for system.multicall, the sum of its results (the calls after it are not run)")
	fs.Int64Var(&lim.MaxInflightBytes, "max-inflight-bytes", lim.MaxInflightBytes,
		"memory the requests in flight may hold at once (each body charged 8x its size, for what decoding makes of it, and each reply); "+
			"past it a request waits up to 1s, then gets fault 3 (busy)")
}

// setMemoryLimit gives the Go runtime a soft memory limit, unless
// GOMEMLIMIT sets one: the requests' budget plus rest (caches, idle
// connections, the runtime). With GOGC at 200 (tuneGC) the heap would
// otherwise grow to three times what is live before a collection; with it,
// the collector works harder as the heap nears the limit, and the budget
// keeps what is live below it.
func setMemoryLimit(lim rpc.Limits, rest int64) {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(lim.MaxInflightBytes + rest)
	}
}
