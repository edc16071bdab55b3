package rpc

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// This file is the token-level half of the decoder: reading, limits,
// well-formedness beyond what encoding/xml checks, and the small
// navigation steps (child, text) that decode.go's grammar is written in.

// decoder walks the token stream of one document. All its methods return a
// *Fault rather than an error so that the server can send it unchanged.
type decoder struct {
	x    *xml.Decoder
	lim  Limits
	kind string // "request" or "response", for messages
}

func newDecoder(r io.Reader, lim Limits, kind string) *decoder {
	lim = lim.orDefaults()
	x := xml.NewDecoder(skipBOM(&limitReader{r: r, left: lim.MaxBodyBytes}))
	// Strict is the default; say so, because the checks of illegal
	// characters, invalid UTF-8 and undefined entities depend on it.
	x.Strict = true
	return &decoder{x: x, lim: lim, kind: kind}
}

// bom is the UTF-8 byte order mark, which XML allows before the XML
// declaration (XML 1.0, 4.3.3) and encoding/xml does not.
var bom = []byte("\xef\xbb\xbf")

// skipBOM returns a reader of r without its leading byte order mark, if
// it has one. The fast path skips it too (scanner.prolog).
func skipBOM(r io.Reader) io.Reader {
	br := bufio.NewReader(r)
	if b, _ := br.Peek(len(bom)); bytes.Equal(b, bom) {
		_, _ = br.Discard(len(bom))
	}
	return br
}

// errBodyTooLarge is returned by limitReader once the body passes the limit.
var errBodyTooLarge = errors.New("body too large")

// limitReader is io.LimitReader that tells "too large" from "ended". The
// server also wraps the body in http.MaxBytesReader (which closes the
// connection on excess); this one makes the limit hold for every caller.
type limitReader struct {
	r    io.Reader
	left int64 // bytes still allowed
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// Read one byte more to tell "exactly at the limit" from "over it".
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			return 0, errBodyTooLarge
		}
		return 0, asReadError(err)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, asReadError(err)
}

// readError marks an error of the body's reader, to tell it from
// encoding/xml's own errors, which come out of the same Token call.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

func asReadError(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return &readError{err}
}

// at says where the decoder is, for fault messages.
func (d *decoder) at() string {
	return fmt.Sprintf(" (at byte %d)", d.x.InputOffset())
}

func (d *decoder) invalid(format string, args ...any) *Fault {
	return Faultf(InvalidRequest, format+d.at(), args...)
}

// token returns the next token, turning read and syntax errors into faults.
// io.EOF is returned as is, because only the caller knows whether it is the
// proper end of the document.
func (d *decoder) token() (xml.Token, *Fault, error) {
	tok, err := d.x.Token()
	if err == nil {
		return tok, nil, nil
	}
	if err == io.EOF {
		return nil, nil, io.EOF
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, errBodyTooLarge):
		return nil, Faultf(TooLarge, "%s body exceeds %d bytes", d.kind, d.lim.MaxBodyBytes), nil
	case errors.As(err, &mbe):
		return nil, Faultf(TooLarge, "%s body exceeds %d bytes", d.kind, mbe.Limit), nil
	}
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		// encoding/xml's messages quote the input (an entity or element
		// name can be megabytes long): cut them.
		return nil, Faultf(ParseError, "malformed XML: line %d: %s", se.Line, clip(se.Msg, maxQuoted*2)), nil
	}
	var re *readError
	if !errors.As(err, &re) {
		return nil, Faultf(ParseError, "malformed XML: %s", clip(err.Error(), maxQuoted*2)), nil
	}
	// The body could not be read: not a parse error, and the
	// error's text (socket addresses) is no business of the client's.
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil, Faultf(TransportError, "%s body not received in time", d.kind), nil
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, Faultf(TransportError, "%s body ended before its declared length", d.kind), nil
	}
	return nil, Faultf(TransportError, "%s body could not be read", d.kind), nil
}

// mustToken is token for places where the document may not end.
func (d *decoder) mustToken() (xml.Token, *Fault) {
	tok, f, err := d.token()
	if err == io.EOF {
		return nil, Faultf(ParseError, "malformed XML: unexpected end of document")
	}
	return tok, f
}

// root returns the root element, after the prolog (XML declaration,
// comments, whitespace).
func (d *decoder) root() (xml.StartElement, *Fault) {
	for {
		tok, f, err := d.token()
		if err == io.EOF {
			return xml.StartElement{}, Faultf(ParseError, "malformed XML: no root element")
		}
		if f != nil {
			return xml.StartElement{}, f
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		case xml.CharData:
			if !isSpace(t) {
				return xml.StartElement{}, Faultf(ParseError, "malformed XML: text before the root element")
			}
		case xml.Directive:
			// encoding/xml would not expand a DTD's entities anyway;
			// refusing DOCTYPE keeps the accepted language simple.
			return xml.StartElement{}, d.invalid("DOCTYPE is not allowed")
		}
	}
}

// end reads the rest of the document after the root element: only
// whitespace, comments and processing instructions may follow.
func (d *decoder) end() *Fault {
	for {
		tok, f, err := d.token()
		if err == io.EOF {
			return nil
		}
		if f != nil {
			return f
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return Faultf(ParseError, "malformed XML: element <%s> after the root element", clip(t.Name.Local, maxQuoted))
		case xml.CharData:
			if !isSpace(t) {
				return Faultf(ParseError, "malformed XML: text after the root element")
			}
		case xml.Directive:
			return d.invalid("DOCTYPE is not allowed")
		}
	}
}

// child returns the next child element of parent, or ok=false at parent's
// end tag. Whitespace and comments between elements are skipped; other text
// is refused.
func (d *decoder) child(parent string) (el xml.StartElement, ok bool, f *Fault) {
	for {
		tok, f := d.mustToken()
		if f != nil {
			return xml.StartElement{}, false, f
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, true, nil
		case xml.EndElement:
			return xml.StartElement{}, false, nil
		case xml.CharData:
			if !isSpace(t) {
				return xml.StartElement{}, false, d.invalid("unexpected text in <%s>", parent)
			}
		}
	}
}

// noMoreChildren reads up to parent's end tag, refusing any further child.
func (d *decoder) noMoreChildren(parent string) *Fault {
	el, ok, f := d.child(parent)
	if f != nil {
		return f
	}
	if ok {
		return d.invalid("unexpected <%s> in <%s>", clip(el.Name.Local, maxQuoted), parent)
	}
	return nil
}

// text reads the character data of a leaf element up to its end tag.
// CDATA sections and comments may split it; child elements are refused.
func (d *decoder) text(el string) (string, *Fault) {
	var b strings.Builder
	for {
		tok, f := d.mustToken()
		if f != nil {
			return "", f
		}
		switch t := tok.(type) {
		case xml.CharData:
			b.Write(t)
		case xml.StartElement:
			return "", d.invalid("unexpected <%s> in <%s>", clip(t.Name.Local, maxQuoted), el)
		case xml.EndElement:
			return b.String(), nil
		}
	}
}

// isSpace reports whether b is only XML whitespace.
func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}
