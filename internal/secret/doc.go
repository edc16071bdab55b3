// Package secret reads and creates the token files that authenticate
// twopc's processes to each other (the peer token) and clients to the
// coordinator (the client token). Servers, twopc local, the drill and the
// SSH deploy all go through it, so a token file means the same everywhere.
//
// Invariants:
//   - A token is the first line of its file, trimmed; an empty one is
//     refused.
//   - A token file that others can read is refused: a secret anyone on
//     the machine can read is no secret.
//   - A token file is created with mode 0600, from 32 random bytes, and
//     never replaces an existing file: two processes racing to create it
//     end up sharing one token, not each holding their own.
//   - Tokens never appear in errors, only the files' names.
package secret
