package rpc

import (
	"bytes"
	"encoding/base64"
	"math"
	"strconv"
)

// This file is scalars.go for the fast path: the same rules over the text
// in place, so that a well-formed scalar costs no allocation beyond its
// value. Each function calls the same strconv or base64 function that
// scalars.go calls, on the same text, and gives up where that one errs;
// dateTime.iso8601, rare on this project's paths, simply calls scalars.go.

// scalar converts the text of scalar element el.
func (s *scanner) scalar(el elem, t []byte) (any, bool) {
	switch el {
	case elString:
		return s.str(t), true
	case elInt, elI4:
		return fastInt(t, 32)
	case elI8:
		return fastInt(t, 64)
	case elBoolean:
		switch string(bytes.TrimSpace(t)) {
		case "0":
			return false, true
		case "1":
			return true, true
		}
	case elDouble:
		return fastDouble(t)
	case elBase64:
		return s.base64(t)
	case elDateTime:
		v, err := parseDateTime(string(t))
		return v, err == nil
	case elNil:
		return nil, len(bytes.TrimSpace(t)) == 0
	}
	return nil, false
}

// fastInt is parseInt. bytes.TrimSpace trims what strings.TrimSpace trims,
// Unicode spaces included.
func fastInt(t []byte, bits int) (any, bool) {
	n, err := strconv.ParseInt(string(bytes.TrimSpace(t)), 10, bits)
	return n, err == nil
}

// fastDouble is parseDouble.
func fastDouble(t []byte) (any, bool) {
	t = bytes.TrimSpace(t)
	if len(t) == 0 || len(bytes.Trim(t, "0123456789+-.eE")) != 0 {
		return nil, false
	}
	f, err := strconv.ParseFloat(string(t), 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, false
	}
	return f, true
}

// base64 is parseBase64, with s.text as the buffer for the text without
// its whitespace. t may be s.text itself: compacting it in place is safe,
// as the writing never overtakes the reading.
func (s *scanner) base64(t []byte) (any, bool) {
	b, ok := s.base64Bytes(t)
	if !ok {
		return nil, false
	}
	return b, true
}

func (s *scanner) base64Bytes(t []byte) ([]byte, bool) {
	clean := s.text[:0]
	for _, c := range t {
		if !isSpaceByte(c) {
			clean = append(clean, c)
		}
	}
	s.text = clean
	b := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
	n, err := base64.StdEncoding.Decode(b, clean)
	if err != nil {
		return nil, false
	}
	return b[:n], true // never nil, as parseBase64 promises
}

// maxIntern is the longest string that str looks up among the interned.
const maxIntern = 16

// str returns t as a string in an interface. Strings are immutable, so a
// short one seen recently is returned as the same boxed value: that saves
// two allocations per "yes" of a batch reply.
func (s *scanner) str(t []byte) any {
	if len(t) == 0 {
		return ""
	}
	if len(t) > maxIntern {
		return string(t)
	}
	e := s.intern(t)
	if e.v == nil {
		e.v = e.s // boxed once, when first wanted boxed
	}
	return e.v
}

// name returns t as a string, interned like str's values: method names
// and member names (faultCode, faultString) repeat from call to call.
func (s *scanner) name(t []byte) string {
	if len(t) == 0 || len(t) > maxIntern {
		return string(t)
	}
	return s.intern(t).s
}

func (s *scanner) intern(t []byte) *internEntry {
	for i := range s.interned {
		if e := &s.interned[i]; e.used && e.s == string(t) {
			return e
		}
	}
	e := &s.interned[s.nextSlot]
	s.nextSlot = (s.nextSlot + 1) % len(s.interned)
	*e = internEntry{s: string(t), used: true}
	return e
}
