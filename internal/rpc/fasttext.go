package rpc

import (
	"bytes"
	"unicode/utf8"
)

// This file reads character data for the fast path, as encoding/xml's
// Decoder.text does: the same references, the same end-of-line handling,
// the same characters refused. Where it cannot be sure, it reports
// ok=false.

// charData reads character data up to the next '<' and returns it as
// encoding/xml would give it. Plain text (the usual case) is returned as a
// slice of the body, without copying; text with references or CRs is
// decoded into s.text. The result is only valid until the next charData.
func (s *scanner) charData() ([]byte, bool) {
	b := s.b
	for i := s.i; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '<':
			t := b[s.i:i]
			s.i = i
			return t, true
		case c == '&' || c == '\r':
			return s.decodeText()
		case c == '>' && i-s.i >= 2 && b[i-1] == ']' && b[i-2] == ']':
			return nil, false // encoding/xml: "unescaped ]]> not in CDATA section"
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 || !isXMLChar(r) {
				return nil, false
			}
			i += n - 1
		case c < 0x20 && c != '\t' && c != '\n':
			return nil, false
		}
	}
	return nil, false // the document ends inside text
}

// decodeText is charData for text that needs rewriting. It follows
// encoding/xml's Decoder.text step by step: b0 and b1 are the last two raw
// bytes, forgotten after a reference, which is what decides both "]]>"
// and whether an LF follows a raw CR.
func (s *scanner) decodeText() ([]byte, bool) {
	b := s.b
	out := s.text[:0]
	var b0, b1 byte
	for i := s.i; i < len(b); {
		c := b[i]
		switch {
		case c == '<':
			s.i, s.text = i, out
			return out, true
		case c == '&':
			r, n, ok := reference(b[i:])
			if !ok {
				return nil, false
			}
			out = utf8.AppendRune(out, r)
			i += n
			b0, b1 = 0, 0
			continue
		case c == '>' && b0 == ']' && b1 == ']':
			return nil, false
		case c == '\r':
			out = append(out, '\n') // XML's end-of-line handling
		case c == '\n' && b1 == '\r':
			// The LF of a CRLF, already written as one LF.
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 || !isXMLChar(r) {
				return nil, false
			}
			out = append(out, b[i:i+n]...)
			i += n
			b0, b1 = 0, 0 // the last raw bytes were neither ']' nor CR
			continue
		case c < 0x20 && c != '\t' && c != '\n':
			return nil, false
		default:
			out = append(out, c)
		}
		b0, b1 = b1, c
		i++
	}
	return nil, false
}

// reference decodes the entity or character reference at the start of b,
// returning the character and the reference's length. It accepts what
// encoding/xml accepts in strict mode without a DTD: the five predefined
// entities and &#decimal; or &#xhex; (lower-case x only) for a character
// XML allows, where a surrogate becomes U+FFFD as encoding/xml makes it.
func reference(b []byte) (rune, int, bool) {
	for _, e := range predefined {
		if bytes.HasPrefix(b, e.ref) {
			return e.r, len(e.ref), true
		}
	}
	if len(b) < 3 || b[1] != '#' {
		return 0, 0, false
	}
	i, base := 2, rune(10)
	if b[i] == 'x' {
		i, base = 3, 16
	}
	digits := i
	var n rune
	for ; i < len(b); i++ {
		d := digitVal(b[i], base)
		if d < 0 {
			break
		}
		if n = n*base + d; n > utf8.MaxRune {
			return 0, 0, false
		}
	}
	if i == digits || i >= len(b) || b[i] != ';' {
		return 0, 0, false
	}
	if 0xD800 <= n && n <= 0xDFFF {
		n = utf8.RuneError // string(rune(n)), as encoding/xml does
	}
	if !isXMLChar(n) {
		return 0, 0, false
	}
	return n, i + 1, true
}

var predefined = []struct {
	ref []byte
	r   rune
}{
	{[]byte("&lt;"), '<'},
	{[]byte("&gt;"), '>'},
	{[]byte("&amp;"), '&'},
	{[]byte("&quot;"), '"'},
	{[]byte("&apos;"), '\''},
}

func digitVal(c byte, base rune) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case base == 16 && 'a' <= c && c <= 'f':
		return rune(c-'a') + 10
	case base == 16 && 'A' <= c && c <= 'F':
		return rune(c-'A') + 10
	}
	return -1
}
