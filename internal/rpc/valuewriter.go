package rpc

import (
	"bytes"
	"unsafe"
)

// ValueWriter encodes XML-RPC values one element at a time, straight into
// its buffer, for a caller that knows the shape of what it sends and
// sends a lot of it: package peer's batches. Built as a tree of any
// first, each string was boxed and each array a slice of its own: 44
// allocations per put in a coordinator, a quarter of all it made. What
// a ValueWriter wrote goes into a call as one param (Raw).
//
// The methods mirror encoder.value's cases, with the same text: a
// document sent with a ValueWriter reads back exactly as the same values
// sent as a tree would. Arrays must be closed as they were opened; Raw
// does not check. The first string XML cannot carry (as encoder.text
// refuses it) is kept, and reported by Err; what w holds is then not to
// be sent.
type ValueWriter struct {
	e   encoder
	err error
}

// Raw is what a ValueWriter wrote: one or more <value> elements (as
// many as its top level holds; one, to be a param), written out as they
// are by the encoder. Only a ValueWriter makes one, so its XML is ours.
type Raw struct{ b []byte }

// Reset empties w and forgets its error. It keeps w's buffer for the
// next values, unless one large value grew it past maxPooledEncoder.
func (w *ValueWriter) Reset() {
	if w.e.buf.Cap() > maxPooledEncoder {
		w.e.buf = bytes.Buffer{}
	}
	w.e.reset(nil)
	w.err = nil
}

// Err is the first error of a string w was given, or nil.
func (w *ValueWriter) Err() error { return w.err }

// Len is how many bytes w holds.
func (w *ValueWriter) Len() int { return w.e.buf.Len() }

// Raw returns what w holds, valid until w is next written or Reset.
func (w *ValueWriter) Raw() Raw { return Raw{w.e.buf.Bytes()} }

// String writes s as a <string>.
func (w *ValueWriter) String(s string) {
	w.e.write("<value>")
	if err := w.e.str(s); err != nil && w.err == nil {
		w.err = err
	}
	w.e.write("</value>")
}

// StringBytes writes b as a <string>, as String(string(b)) would,
// without copying it.
func (w *ValueWriter) StringBytes(b []byte) {
	w.String(unsafe.String(unsafe.SliceData(b), len(b))) // read here, never kept
}

// Base64 writes b as <base64>.
func (w *ValueWriter) Base64(b []byte) {
	w.e.write("<value>")
	w.e.bytes(b)
	w.e.write("</value>")
}

// Int writes n as <int>, or <i8> when it does not fit in 32 bits.
func (w *ValueWriter) Int(n int64) {
	w.e.write("<value>")
	w.e.integer(n)
	w.e.write("</value>")
}

// Bool writes b as <boolean>.
func (w *ValueWriter) Bool(b bool) {
	w.e.write("<value>")
	w.e.boolean(b)
	w.e.write("</value>")
}

// OpenArray starts an <array>; the values written until CloseArray are
// its elements.
func (w *ValueWriter) OpenArray() { w.e.write("<value><array><data>") }

// CloseArray ends the innermost open <array>.
func (w *ValueWriter) CloseArray() { w.e.write("</data></array></value>") }

// Fault writes a fault's struct (faultCode, faultString), as one entry
// of a batch's reply. Like EncodeFault, it replaces what XML cannot carry
// in msg with U+FFFD: a fault must always get out.
func (w *ValueWriter) Fault(code int, msg string) {
	w.e.write("<value><struct><member><name>faultCode</name>")
	w.Int(int64(code))
	w.e.write("</member><member><name>faultString</name>")
	w.String(sanitize(msg))
	w.e.write("</member></struct></value>")
}
