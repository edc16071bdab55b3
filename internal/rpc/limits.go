package rpc

import "time"

// Limits bound what a peer can make this package allocate or do. A request
// over any limit is refused with a TooLarge fault whose message states the
// limit. A zero (or negative) field means "use the default": a zero Limits
// is never "unlimited".
type Limits struct {
	MaxBodyBytes int64 // size of a request or response body
	MaxDepth     int   // nesting of values; a scalar param is depth 1, each array or struct adds 1
	MaxParams    int   // params of one call
	MaxMulticall int   // entries of one system.multicall

	// A server's own limits (a client uses only those above).
	MaxReplyBytes    int64         // size of a reply; for system.multicall, the sum of its entries' results
	MaxInflightBytes int64         // memory the requests in flight may hold at once (see budget.go)
	BusyWait         time.Duration // longest wait for room in MaxInflightBytes before a Busy fault
}

// DefaultLimits are generous for the coordinator's API (keys and values
// travel in a handful of params) and small enough that one request cannot
// exhaust the server's memory.
func DefaultLimits() Limits {
	return Limits{
		MaxBodyBytes: 4 << 20,
		MaxDepth:     32,
		MaxParams:    64,
		MaxMulticall: 1000,
		// A get of a 1 MiB value whose every byte XML writes as five
		// (&amp;) takes 5 MiB: allow that, not a thousand of them.
		MaxReplyBytes:    8 << 20,
		MaxInflightBytes: 64 << 20,
		BusyWait:         time.Second,
	}
}

// orDefaults fills zero fields from DefaultLimits.
func (l Limits) orDefaults() Limits {
	d := DefaultLimits()
	orDefault(&l.MaxBodyBytes, d.MaxBodyBytes)
	orDefault(&l.MaxDepth, d.MaxDepth)
	orDefault(&l.MaxParams, d.MaxParams)
	orDefault(&l.MaxMulticall, d.MaxMulticall)
	orDefault(&l.MaxReplyBytes, d.MaxReplyBytes)
	orDefault(&l.MaxInflightBytes, d.MaxInflightBytes)
	orDefault(&l.BusyWait, d.BusyWait)
	return l
}

func orDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}
