// Package web is what a twopc server answers besides XML-RPC, on the same
// port: GET /metrics (Prometheus), GET /healthz (the process serves),
// GET /readyz (it can take writes now, or why not) and, on a coordinator,
// GET / from a browser, a status page that refreshes itself. POST / and
// POST /RPC2 stay XML-RPC; so does every other path, whose answer the
// rpc.Server gives.
//
// What these show: counts, durations, states, participant names and
// URLs, transaction ids and ages, and keys of unfinished transactions on
// the page; never a value and never a token. Access:
//
//   - /healthz and /readyz are open, as load balancers and supervisors
//     probe them without credentials; they say only ok or why not ready.
//   - /metrics is open, as etcd's and CockroachDB's are: scrapers then
//     need no token, and a token that could write data would be a worse
//     thing to hand every scraper than counts are to show. Keep the port
//     off untrusted networks (servers refuse to listen beyond loopback
//     without a peer token anyway).
//   - The status page lists transactions and their keys, so when the
//     coordinator has a client token it asks for it like XML-RPC does: as
//     a Bearer token or as the password of Basic auth, which a browser
//     prompts for (any user name).
//
// /readyz, /metrics and the page read the coordinator's Status through
// SharedStatus, so that however often they are asked, the participants
// are probed at most once a second.
//
// A port that serves TLS answers a client speaking plain HTTP with a 400
// whose body says to use https (TLSListener), not with a failed
// handshake.
package web
