package rpc

import (
	"fmt"
	"unicode/utf8"
)

// Input is never repeated whole in a fault or a log line: a name, a
// number or an encoding/xml message taken from a request is cut to a
// short excerpt first, and every fault message (whatever built it) is cut
// to maxMessage bytes on its way out, so that a huge request cannot make a
// huge reply or a huge log line.
const (
	maxQuoted  = 40  // bytes of an input string quoted in a message
	maxMessage = 400 // bytes of a whole fault message
)

// excerpt quotes s for a message, cut to maxQuoted bytes.
func excerpt(s string) string {
	if len(s) > maxQuoted {
		return fmt.Sprintf("%q...", s[:runeStart(s, maxQuoted)])
	}
	return fmt.Sprintf("%q", s)
}

// clip cuts s to at most n bytes (plus the marker), on a rune boundary,
// saying how long it was.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s... (%d bytes)", s[:runeStart(s, n)], len(s))
}

// runeStart returns the largest i <= n at which a rune of s starts.
func runeStart(s string, n int) int {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return n
}

// outgoing returns f with its message cut to maxMessage bytes.
func (f *Fault) outgoing() *Fault {
	if len(f.Message) <= maxMessage {
		return f
	}
	return &Fault{Code: f.Code, Message: clip(f.Message, maxMessage)}
}
