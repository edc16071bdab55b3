// Package api is the coordinator's public XML-RPC surface: the methods
// clients call (put, get, delete, status) and tx.outcome, which
// participants call, registered on an rpc.Server; the fault code of every
// coordinator error; and Client, the typed Go client the CLI, the drill,
// the deploy tools and the bench share.
//
// It sits above the coordinator: the coordinator knows nothing of XML,
// and this package knows nothing of how a transaction is run. Status
// travels as one documented struct (see EncodeStatus); every Go reader
// decodes it with DecodeStatus into coordinator.Status, never by hand.
package api
