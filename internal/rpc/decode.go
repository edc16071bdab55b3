package rpc

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// DecodeCall reads one XML-RPC methodCall from r.
//
// Every error is a *Fault, ready to send back: ParseError when the body is
// not well-formed XML (including invalid UTF-8 and characters XML forbids)
// or a scalar's text does not parse; InvalidRequest when it is XML but not a
// methodCall; TooLarge when it is beyond lim. params is never nil. r is
// read to its end, or past lim.MaxBodyBytes (see "Fast path" in doc.go).
func DecodeCall(r io.Reader, lim Limits) (method string, params []any, err error) {
	return decodeCall(r, lim, 0, nil)
}

// decodeCall is DecodeCall for a body of a known length (0: unknown), so
// that it can be read into one buffer of the right size, and with the
// param readers of the methods that have one (readerOf, nil: none).
func decodeCall(r io.Reader, lim Limits, length int64, readerOf func(method string) ParamReader) (method string, params []any, err error) {
	lim = lim.orDefaults()
	s := getScanner(lim)
	defer putScanner(s)
	rest := s.read(r, lim.MaxBodyBytes, length)
	if rest == nil {
		if readerOf != nil {
			if method, v, ok := s.callReading(readerOf); ok {
				return method, []any{v}, nil
			}
			clear(s.vals) // what the reader left, before decoding again
			clear(s.mems)
			s.vals, s.mems = s.vals[:0], s.mems[:0]
		}
		if method, params, ok := s.call(); ok {
			return method, params, nil
		}
		rest = bytes.NewReader(s.b)
	}
	return decodeCallXML(rest, lim)
}

// decodeCallXML is DecodeCall's slow path, with encoding/xml: the one
// that decides every input the fast path (fastdecode.go) leaves to it.
func decodeCallXML(r io.Reader, lim Limits) (method string, params []any, err error) {
	d := newDecoder(r, lim, "request")
	method, params, f := d.call()
	if f != nil {
		return "", nil, f
	}
	return method, params, nil
}

// DecodeResponse reads one XML-RPC methodResponse from r and returns its
// value. If the response is a fault, the error is that *Fault; any other
// problem (malformed XML, a body over lim.MaxBodyBytes) is a plain error,
// so that a caller can tell "the server said no" from "the reply was
// broken".
func DecodeResponse(r io.Reader, lim Limits) (any, error) {
	v, _, err := decodeResponseReading(r, lim, nil)
	return v, err
}

// decodeResponseReading is DecodeResponse, but first lets read (unless
// nil) read the value, on the fast path: the bool is true if it did,
// and there is nothing more to decode.
func decodeResponseReading(r io.Reader, lim Limits, read func(*ValueReader) bool) (any, bool, error) {
	lim = lim.orDefaults()
	s := getScanner(lim)
	defer putScanner(s)
	rest := s.read(r, lim.MaxBodyBytes, 0)
	if rest == nil && read != nil {
		if s.readResponse(read) {
			return nil, true, nil
		}
		clear(s.vals) // what read left, before decoding again
		clear(s.mems)
		s.vals, s.mems = s.vals[:0], s.mems[:0]
	}
	v, err := decodeResponseRest(s, rest, lim)
	return v, false, err
}

// decodeResponseRest decodes the response in s (its whole body when
// rest is nil; else s's bytes then rest).
func decodeResponseRest(s *scanner, rest io.Reader, lim Limits) (any, error) {
	if rest == nil {
		if v, fault, ok := s.response(); ok {
			if fault != nil {
				return nil, fault
			}
			return v, nil
		}
		rest = bytes.NewReader(s.b)
	}
	return decodeResponseXML(rest, lim)
}

// decodeResponseXML is DecodeResponse's slow path, with encoding/xml.
func decodeResponseXML(r io.Reader, lim Limits) (any, error) {
	d := newDecoder(r, lim, "response")
	v, fault, f := d.response()
	if f != nil {
		// Deliberately not wrapped: this Fault describes our failure to
		// read the reply, not a fault the server sent.
		return nil, fmt.Errorf("rpc: malformed response: %s", f.Message)
	}
	if fault != nil {
		return nil, fault
	}
	return v, nil
}

// call decodes a whole methodCall document.
func (d *decoder) call() (string, []any, *Fault) {
	root, f := d.root()
	if f != nil {
		return "", nil, f
	}
	if root.Name.Local != "methodCall" {
		return "", nil, d.invalid("root element is <%s>, want <methodCall>", clip(root.Name.Local, maxQuoted))
	}
	var (
		method    string
		haveName  bool
		params    = []any{}
		gotParams bool
	)
	for {
		el, ok, f := d.child("methodCall")
		if f != nil {
			return "", nil, f
		}
		if !ok {
			break
		}
		switch {
		case el.Name.Local == "methodName" && !haveName:
			if method, f = d.text("methodName"); f != nil {
				return "", nil, f
			}
			if f = checkMethodName(method); f != nil {
				return "", nil, f
			}
			haveName = true
		case el.Name.Local == "params" && !haveName:
			return "", nil, d.invalid("missing <methodName> before <params>")
		case el.Name.Local == "params" && !gotParams:
			if params, f = d.params(); f != nil {
				return "", nil, f
			}
			gotParams = true
		default:
			return "", nil, d.invalid("unexpected <%s> in <methodCall>", clip(el.Name.Local, maxQuoted))
		}
	}
	if !haveName {
		return "", nil, d.invalid("missing <methodName>")
	}
	if f := d.end(); f != nil {
		return "", nil, f
	}
	return method, params, nil
}

// checkMethodName keeps method names to the characters the XML-RPC spec
// allows, so that they are safe in logs and fault messages.
func checkMethodName(name string) *Fault {
	if name == "" {
		return Faultf(InvalidRequest, "empty method name")
	}
	for _, c := range []byte(name) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == '.' || c == ':' || c == '/'
		if !ok {
			return Faultf(InvalidRequest, "method name %s: only A-Z a-z 0-9 _ . : / are allowed", excerpt(name))
		}
	}
	return nil
}

// params decodes <params>, whose start tag has been read.
func (d *decoder) params() ([]any, *Fault) {
	params := []any{}
	for {
		el, ok, f := d.child("params")
		if f != nil {
			return nil, f
		}
		if !ok {
			return params, nil
		}
		if el.Name.Local != "param" {
			return nil, d.invalid("unexpected <%s> in <params>", clip(el.Name.Local, maxQuoted))
		}
		if len(params) == d.lim.MaxParams {
			return nil, Faultf(TooLarge, "more than %d params", d.lim.MaxParams)
		}
		v, f := d.wrappedValue("param", 1)
		if f != nil {
			return nil, f
		}
		params = append(params, v)
	}
}

// wrappedValue decodes the one <value> that parent (param, fault) must hold,
// and parent's end tag.
func (d *decoder) wrappedValue(parent string, depth int) (any, *Fault) {
	el, ok, f := d.child(parent)
	if f != nil {
		return nil, f
	}
	if !ok {
		return nil, d.invalid("<%s> without a <value>", parent)
	}
	if el.Name.Local != "value" {
		return nil, d.invalid("unexpected <%s> in <%s>", clip(el.Name.Local, maxQuoted), parent)
	}
	v, f := d.value(depth)
	if f != nil {
		return nil, f
	}
	if f := d.noMoreChildren(parent); f != nil {
		return nil, f
	}
	return v, nil
}

// value decodes a <value>, whose start tag has been read. A value is either
// untyped text (a string, kept byte for byte like Python does, whitespace
// included) or one type element, optionally surrounded by whitespace.
func (d *decoder) value(depth int) (any, *Fault) {
	if depth > d.lim.MaxDepth {
		return nil, Faultf(TooLarge, "values nested deeper than %d levels", d.lim.MaxDepth)
	}
	var (
		text     strings.Builder
		nonSpace bool // text holds more than whitespace
		typed    any
		typ      string
	)
	for {
		tok, f := d.mustToken()
		if f != nil {
			return nil, f
		}
		switch t := tok.(type) {
		case xml.CharData:
			if typ != "" && !isSpace(t) {
				return nil, d.invalid("text after <%s> in <value>", clip(typ, maxQuoted))
			}
			nonSpace = nonSpace || !isSpace(t)
			text.Write(t)
		case xml.StartElement:
			if typ != "" {
				return nil, d.invalid("<value> holds both <%s> and <%s>", clip(typ, maxQuoted), clip(t.Name.Local, maxQuoted))
			}
			if nonSpace {
				return nil, d.invalid("text before <%s> in <value>", clip(t.Name.Local, maxQuoted))
			}
			typ = t.Name.Local
			if typed, f = d.typed(typ, depth); f != nil {
				return nil, f
			}
		case xml.EndElement:
			if typ == "" {
				return text.String(), nil
			}
			return typed, nil
		}
	}
}

// typed decodes the type element typ inside a <value> at depth. Names are
// matched without namespace so that Apache's <ex:nil/> is <nil/>.
func (d *decoder) typed(typ string, depth int) (any, *Fault) {
	switch typ {
	case "struct":
		return d.structure(depth)
	case "array":
		return d.array(depth)
	case "string", "int", "i4", "i8", "boolean", "double", "base64", "dateTime.iso8601", "nil":
		s, f := d.text(typ)
		if f != nil {
			return nil, f
		}
		v, err := parseScalar(typ, s)
		if err != nil {
			return nil, Faultf(ParseError, "%v%s", err, d.at())
		}
		return v, nil
	default:
		return nil, d.invalid("unknown type <%s>", clip(typ, maxQuoted))
	}
}

// structure decodes <struct> members: <member><name/><value/></member>.
// A repeated name keeps the last value, as Python does.
func (d *decoder) structure(depth int) (map[string]any, *Fault) {
	m := map[string]any{}
	for {
		el, ok, f := d.child("struct")
		if f != nil {
			return nil, f
		}
		if !ok {
			return m, nil
		}
		if el.Name.Local != "member" {
			return nil, d.invalid("unexpected <%s> in <struct>", clip(el.Name.Local, maxQuoted))
		}
		el, ok, f = d.child("member")
		if f != nil {
			return nil, f
		}
		if !ok || el.Name.Local != "name" {
			return nil, d.invalid("<member> must start with <name>")
		}
		name, f := d.text("name")
		if f != nil {
			return nil, f
		}
		v, f := d.wrappedValue("member", depth+1)
		if f != nil {
			return nil, f
		}
		m[name] = v
	}
}

// array decodes <array><data><value/>...</data></array>.
func (d *decoder) array(depth int) ([]any, *Fault) {
	el, ok, f := d.child("array")
	if f != nil {
		return nil, f
	}
	if !ok || el.Name.Local != "data" {
		return nil, d.invalid("<array> must hold one <data>")
	}
	a := []any{}
	for {
		el, ok, f := d.child("data")
		if f != nil {
			return nil, f
		}
		if !ok {
			break
		}
		if el.Name.Local != "value" {
			return nil, d.invalid("unexpected <%s> in <data>", clip(el.Name.Local, maxQuoted))
		}
		v, f := d.value(depth + 1)
		if f != nil {
			return nil, f
		}
		a = append(a, v)
	}
	if f := d.noMoreChildren("array"); f != nil {
		return nil, f
	}
	return a, nil
}

// response decodes a whole methodResponse document: either its one value,
// or the fault it carries.
func (d *decoder) response() (v any, fault *Fault, f *Fault) {
	root, f := d.root()
	if f != nil {
		return nil, nil, f
	}
	if root.Name.Local != "methodResponse" {
		return nil, nil, d.invalid("root element is <%s>, want <methodResponse>", clip(root.Name.Local, maxQuoted))
	}
	el, ok, f := d.child("methodResponse")
	if f != nil {
		return nil, nil, f
	}
	switch {
	case ok && el.Name.Local == "params":
		el, ok, f = d.child("params")
		if f != nil {
			return nil, nil, f
		}
		if !ok || el.Name.Local != "param" {
			return nil, nil, d.invalid("<params> of a response must hold one <param>")
		}
		if v, f = d.wrappedValue("param", 1); f != nil {
			return nil, nil, f
		}
		if f = d.noMoreChildren("params"); f != nil {
			return nil, nil, f
		}
	case ok && el.Name.Local == "fault":
		fv, f := d.wrappedValue("fault", 1)
		if f != nil {
			return nil, nil, f
		}
		if fault, f = faultFromValue(fv); f != nil {
			return nil, nil, f
		}
	default:
		return nil, nil, d.invalid("<methodResponse> must hold <params> or <fault>")
	}
	if f = d.noMoreChildren("methodResponse"); f != nil {
		return nil, nil, f
	}
	if f = d.end(); f != nil {
		return nil, nil, f
	}
	return v, fault, nil
}

// faultFromValue reads the {faultCode, faultString} struct of a fault.
func faultFromValue(v any) (*Fault, *Fault) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, Faultf(InvalidRequest, "fault value is %s, want struct", TypeName(v))
	}
	code, ok := m["faultCode"].(int64)
	if !ok {
		return nil, Faultf(InvalidRequest, "fault has no int faultCode")
	}
	msg, ok := m["faultString"].(string)
	if !ok {
		return nil, Faultf(InvalidRequest, "fault has no string faultString")
	}
	return &Fault{Code: int(code), Message: msg}, nil
}
