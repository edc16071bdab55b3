// Package e2e tests the real binary: it builds twopc, starts a
// coordinator and three participants as separate processes on loopback,
// puts load on them, kills them with SIGKILL and checks what survived.
package e2e
