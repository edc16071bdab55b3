package rpc

// Limits bound what a peer can make this package allocate or do. A request
// over any limit is refused with a TooLarge fault whose message states the
// limit. A zero (or negative) field means "use the default": a zero Limits
// is never "unlimited".
type Limits struct {
	MaxBodyBytes int64 // size of a request or response body
	MaxDepth     int   // nesting of values; a scalar param is depth 1, each array or struct adds 1
	MaxParams    int   // params of one call
	MaxMulticall int   // entries of one system.multicall
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
	}
}

// orDefaults fills zero fields from DefaultLimits.
func (l Limits) orDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxParams <= 0 {
		l.MaxParams = d.MaxParams
	}
	if l.MaxMulticall <= 0 {
		l.MaxMulticall = d.MaxMulticall
	}
	return l
}
