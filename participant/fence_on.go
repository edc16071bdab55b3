//go:build !twopc_nofence

package participant

// fenceTerms is whether a lower term than one seen is refused: always,
// but in a binary built with the tag twopc_nofence (fence_off.go).
const fenceTerms = true
