//go:build twopc_nofence

package participant

// fenceTerms is off in a binary built with -tags twopc_nofence: a
// planted bug, for showing what the drill sees of a participant that
// does not fence (README, Drill). Never ship it: a deposed leader's
// reads, prepares and installs are then accepted.
const fenceTerms = false
