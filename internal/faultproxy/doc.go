// Package faultproxy puts a TCP proxy between two processes so that a test
// or a drill can make the network between them misbehave while traffic
// flows: delay it, black-hole it, or cut it, in either direction.
//
// Killing and pausing processes (ops/drill's other faults) never shows
// the failures a network has: a prepare that arrives after the
// coordinator gave up on it, a reply lost while the request took effect,
// a peer that is alive but unreachable for seconds, connections reset
// under a pooled HTTP client. Those need something on the wire.
//
// # The model
//
// A Proxy listens on a loopback port and forwards every connection it
// accepts to one target. Up is data from the side that opened the
// connection to the target, Down the way back. A Link pairs two proxies
// between processes A and B: the connections A opens to B, and those B
// opens to A, so that Up is A to B on both (a request on one, a reply on
// the other). The faults:
//
//   - Delay(dir, d): every chunk read in dir is delivered d after it was
//     read; chunks keep their order. Ending the delay releases what it
//     holds at once.
//   - Drop(dir): a black hole. Bytes read in dir are discarded, and the
//     end of the stream (FIN) is held back until the drop ends, so the
//     peer sees a silent connection that stays open: a partition, not a
//     crash. What was dropped is lost for good; a request or reply cut in
//     two by a drop is garbage to whoever reads the rest, which is what
//     an HTTP client that timed out and closed the connection never sees.
//   - Cut: every open connection is reset (RST, both sides), and new ones
//     are accepted and reset at once while the cut lasts: a peer that
//     crashed, or a firewall that rejects. A TCP connection dies as a
//     whole, so a proxy's cut has no direction; a Link's cut of Up cuts
//     the connections A opens, of Down those B opens.
//
// Every fault is a hold that the function it returns releases, so faults
// set by callers that know nothing of each other overlap: a direction
// drops while any drop is held, is delayed by the longest delay held, and
// a proxy is cut while any cut is held. Faults may be set and ended at
// any moment, while connections are open and bytes are in flight.
//
// # Invariants
//
//   - Memory is bounded: each direction of a connection holds at most
//     queueChunks chunks of at most chunkSize bytes; past that the proxy
//     stops reading and TCP's flow control pushes back on the sender.
//     Dropped bytes are discarded as they are read, never kept.
//   - Bytes that are delivered are delivered once, in order; a
//     connection is either forwarded whole (minus what a drop discarded)
//     or reset on both sides, never left half-open by the proxy.
//   - Delays are measured on an injected clock, so tests can hold bytes
//     and release them without sleeping.
//   - Close resets every connection and returns once every goroutine of
//     the proxy has ended.
package faultproxy
