// Package logging builds the slog loggers of twopc's servers: one
// --log-format (text or json) for every server command, and one set of
// field names that every process uses, so that the logs of a whole
// cluster can be joined by a machine: grep txid=1.42 in text, or
// select(.txid == "1.42") in json, finds the transaction everywhere.
//
// Loggers are passed down explicitly; no package of twopc should log
// through slog's global default.
package logging
