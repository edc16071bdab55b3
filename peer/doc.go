// Package peer is how the coordinator and the participants talk: the
// participant's XML-RPC methods (Register serves a Backend, which
// participant.Store is), the Go client the coordinator calls them with
// (Client, which batches concurrent calls into one request), the client
// participants ask the coordinator for outcomes with (OutcomeClient),
// and the wire format of a batch (wire.go).
//
// It knows the protocol's vocabulary and nothing of SQLite: the
// coordinator links it without cgo.
package peer
