// Package httpserve serves twopc's HTTP/1.1 calls in each connection's own
// goroutine, and hands every other connection to net/http.
//
// Why: net/http's server starts a goroutine per request to watch the
// connection while the handler runs, and stops it with a read deadline
// once the handler returns. On a small VM those wake-ups cost about as
// much CPU as the rest of the request: 95-116 µs per 1.2 KB round trip in
// net/http's server, against about 30 µs for a loop that reads, serves
// and answers in one goroutine. Every client call of a coordinator is
// such a round trip.
//
// What is served here: a connection whose request line is exactly
// "POST <path> HTTP/1.1" for one of the paths given (the XML-RPC
// endpoint). A call as plain as clients send them, its head already
// buffered, is read by readHead, which makes the request net/http's
// ReadRequest would (FuzzReadHead holds it to that) with fewer
// allocations (seven fewer per put at a coordinator); any other is
// parsed by ReadRequest itself. Both run with the http.Server's limits
// and timeouts, and the request is served by the same handler (or
// Server.Calls).
// A connection whose next request is anything else (a page, metrics, a
// HEAD, HTTP/1.0) goes to the http.Server for the rest of its life, with
// the bytes already read. Upgrades (Hijack) work as with net/http.
//
// What differs from net/http, on purpose: a request's context is not
// cancelled when its client hangs up (the handlers' own timeouts bound
// the work), and a reply without a Content-Length is kept until the
// handler returns, then sent with one (XML-RPC replies carry theirs).
// Requests net/http serves here have no r.TLS (it sees a wrapped
// connection, not a *tls.Conn); nothing in twopc reads it.
package httpserve
