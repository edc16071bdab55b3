// Package replicated runs one of several coordinators: exactly one leads
// and serves, the others forward to it and stand by.
//
// Election and the decision log are package consensus's (etcd raft). When
// this coordinator starts leading, and its epoch record (the term) is
// committed, a coordinator incarnation is built from the replicated
// state, exactly as a restarted single coordinator recovers from its
// txlog: it finishes what the previous leader left undecided, asking the
// participants, then serves. Its decision log is raft's: a record is
// durable once a majority of coordinators hold it. When it stops leading,
// the incarnation is closed (its clients' outcomes are unknown; the next
// leader recovers them), and requests are forwarded to the new leader.
//
// Participants fence a deposed leader: every call carries the term, and a
// participant that heard a newer term refuses an older one. Reads are
// fenced here too: the incarnation answers one only once a majority
// confirmed that it still leads (its log is a consensus.Log, which
// coordinator's reads ask), so its value cache is as safe as a single
// coordinator's.
package replicated
