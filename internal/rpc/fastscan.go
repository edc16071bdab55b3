package rpc

import "bytes"

// This file is the fast path's lexical half: tags and the document's
// prolog and end; fasttext.go reads character data. It accepts a strict subset of what
// encoding/xml accepts, and where it accepts, it must read the same
// characters: each rule below mirrors one in encoding/xml's Decoder.text
// or rawToken. Anything else reports ok=false, and the slow path decides.

// elem names the elements of XML-RPC. The fast path knows no others.
type elem uint8

const (
	elUnknown elem = iota
	elMethodCall
	elMethodResponse
	elMethodName
	elParams
	elParam
	elFault
	elValue
	elStruct
	elMember
	elName
	elArray
	elData
	elString
	elInt
	elI4
	elI8
	elBoolean
	elDouble
	elBase64
	elDateTime
	elNil
)

// lookupElem maps a tag name to its elem. A prefixed name (ex:nil) is
// unknown: namespaces are the slow path's business.
func lookupElem(name []byte) elem {
	switch string(name) {
	case "methodCall":
		return elMethodCall
	case "methodResponse":
		return elMethodResponse
	case "methodName":
		return elMethodName
	case "params":
		return elParams
	case "param":
		return elParam
	case "fault":
		return elFault
	case "value":
		return elValue
	case "struct":
		return elStruct
	case "member":
		return elMember
	case "name":
		return elName
	case "array":
		return elArray
	case "data":
		return elData
	case "string":
		return elString
	case "int":
		return elInt
	case "i4":
		return elI4
	case "i8":
		return elI8
	case "boolean":
		return elBoolean
	case "double":
		return elDouble
	case "base64":
		return elBase64
	case "dateTime.iso8601":
		return elDateTime
	case "nil":
		return elNil
	}
	return elUnknown
}

type tagKind uint8

const (
	startTag tagKind = iota // <x>
	emptyTag                // <x/>, which encoding/xml reads as <x></x>
	endTag                  // </x>
)

// tag reads the tag at s.i: '<', an XML-RPC element name, then '>' or
// "/>". No attributes, no space inside the tag: our encoder, kolo and
// Python write none.
func (s *scanner) tag() (tagKind, elem, bool) {
	b, i := s.b, s.i
	if i >= len(b) || b[i] != '<' {
		return 0, 0, false
	}
	i++
	kind := startTag
	if i < len(b) && b[i] == '/' {
		kind = endTag
		i++
	}
	start := i
	for i < len(b) && isNameChar(b[i]) {
		i++
	}
	el := lookupElem(b[start:i])
	if el == elUnknown || i >= len(b) {
		return 0, 0, false
	}
	if b[i] == '/' && kind == startTag {
		kind = emptyTag
		i++
	}
	if i >= len(b) || b[i] != '>' {
		return 0, 0, false
	}
	s.i = i + 1
	return kind, el, true
}

// isNameChar covers the characters of XML-RPC's element names, and ':' so
// that a prefixed name is read whole (and then refused).
func isNameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-' || c == ':'
}

// next skips whitespace and reads a tag: the slow path's child step,
// which also skips whitespace between elements and refuses other text.
func (s *scanner) next() (tagKind, elem, bool) {
	s.skipSpace()
	return s.tag()
}

// end reads the end tag of el, after optional whitespace.
func (s *scanner) end(el elem) bool {
	kind, got, ok := s.next()
	return ok && kind == endTag && got == el
}

func (s *scanner) skipSpace() {
	for s.i < len(s.b) && isSpaceByte(s.b[s.i]) {
		s.i++
	}
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// leaf reads the text of a leaf element whose start tag (of kind) has
// been read, and its end tag. The result is only valid until the next
// call that reads text.
func (s *scanner) leaf(el elem, kind tagKind) ([]byte, bool) {
	if kind == emptyTag {
		return nil, true
	}
	t, ok := s.charData()
	if !ok {
		return nil, false
	}
	k, got, ok := s.tag()
	return t, ok && k == endTag && got == el
}

// xmlDecls are the XML declarations the fast path knows, between "<?xml"
// and "?>": ours, Python's, kolo's. encoding/xml accepts each of them
// (version 1.0, encoding UTF-8 or none).
var xmlDecls = []string{
	` version="1.0"`,
	` version='1.0'`,
	` version="1.0" encoding="UTF-8"`,
	` version="1.0" encoding="utf-8"`,
	` version='1.0' encoding='UTF-8'`,
	` version='1.0' encoding='utf-8'`,
}

// prolog reads an optional XML declaration at the very start, then
// whitespace.
func (s *scanner) prolog() bool {
	const open, shut = "<?xml", "?>"
	s.i = 0
	if bytes.HasPrefix(s.b, bom) {
		s.i = len(bom)
	}
	if rest := s.b[s.i:]; bytes.HasPrefix(rest, []byte(open)) {
		end := bytes.Index(rest, []byte(shut))
		if end < 0 {
			return false
		}
		known := false
		for _, d := range xmlDecls {
			known = known || string(rest[len(open):end]) == d
		}
		if !known {
			return false
		}
		s.i += end + len(shut)
	}
	s.skipSpace()
	return true
}

// epilog reads what follows the root element: only whitespace.
func (s *scanner) epilog() bool {
	s.skipSpace()
	return s.i == len(s.b)
}
