// Package peer is how the coordinator and the participants talk: the
// participant's XML-RPC methods (Register serves a Backend, which
// participant.Store is), the Go client the coordinator calls them with
// (Client, which batches concurrent calls into one request), the client
// participants ask the coordinator for outcomes with (OutcomeClient),
// and the wire format of a batch (wire.go). The coordinator gives its
// Clients an HTTP client whose transport carries calls over streams
// (rpc.StreamTransport), which participants accept.
//
// Fencing (term.go): a Client belongs to one coordinator term and sends
// it in the TermHeader of every request, so that a participant that has
// heard from a newer coordinator refuses an older one's requests, batch
// and all (fault rpc.StaleTerm, which the Client returns as a
// *protocol.StaleTermError). The server hands the term to the store in
// the request's context (protocol.WithTerm) and refuses a change that
// carries none.
//
// It knows the protocol's vocabulary and nothing of SQLite: the
// coordinator links it without cgo.
package peer
