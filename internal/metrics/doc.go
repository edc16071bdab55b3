// Package metrics holds the Prometheus metrics of twopc's servers, each
// in its own registry (never the global default one, so that nothing a
// library registers there leaks into our /metrics), served in the text
// format by Handler.
//
// Every name starts with twopc_; the README lists them with what to alert
// on. Three kinds of source feed them:
//
//   - hooks the server calls as things happen: rpc.Server's observer
//     (calls by method and code, their latency), coordinator.Observer
//     (prepare and commit phases), txlog's ObserveFsync and the
//     participant store's ObserveCommit and ObserveBatch;
//   - at scrape time, the coordinator's Status (transactions by outcome,
//     in doubt, participant states, the log) and the store's Stats. They
//     are read, not copied into counters, so a scrape always shows what
//     the process reports itself and nothing can drift;
//   - the Go runtime and the process (go_*, process_*), whose
//     process_start_time_seconds tells a restart, after which twopc's
//     counters start again from zero (twopc_epoch rises too).
//
// Labels never carry keys, values, tokens or a caller's method name that
// the server does not have (rpc reports those as ""), so a scrape shows
// no data and no client can make the series grow without bound.
//
// Leadership (issue 12: twopc_leader_changes_total, twopc_term,
// twopc_is_leader) goes into coordinator.go and status.go when the
// coordinator reports it.
package metrics
