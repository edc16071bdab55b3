package rpc

// This file is the fast path's grammar, the same as decode.go's but over
// the scanner, without encoding/xml's tokens. Each method returns ok=false
// wherever decode.go would fail (and wherever the scanner meets XML it does
// not handle): the fast path only ever reports success, so every error, and
// its message, is the slow path's.

// call decodes a whole methodCall document.
func (s *scanner) call() (method string, params []any, ok bool) {
	if !s.prolog() {
		return "", nil, false
	}
	if kind, el, ok := s.tag(); !ok || kind != startTag || el != elMethodCall {
		return "", nil, false
	}
	haveName, gotParams := false, false
	params = []any{}
	for {
		kind, el, ok := s.next()
		if !ok {
			return "", nil, false
		}
		switch {
		case kind == endTag && el == elMethodCall:
			if !haveName || !s.epilog() {
				return "", nil, false
			}
			return method, params, true
		case kind != endTag && el == elMethodName && !haveName:
			t, ok := s.leaf(el, kind)
			if !ok {
				return "", nil, false
			}
			method = s.name(t)
			if checkMethodName(method) != nil {
				return "", nil, false
			}
			haveName = true
		case kind != endTag && el == elParams && haveName && !gotParams:
			if kind == startTag {
				if params, ok = s.params(); !ok {
					return "", nil, false
				}
			}
			gotParams = true
		default:
			return "", nil, false
		}
	}
}

// params decodes the <param>s of <params>, whose start tag has been read.
func (s *scanner) params() ([]any, bool) {
	base := len(s.vals)
	for {
		kind, el, ok := s.next()
		if !ok {
			return nil, false
		}
		if kind == endTag && el == elParams {
			return s.pop(base), true
		}
		if kind != startTag || el != elParam || len(s.vals)-base == s.lim.MaxParams {
			return nil, false
		}
		v, ok := s.wrappedValue(elParam, 1)
		if !ok {
			return nil, false
		}
		s.vals = append(s.vals, v)
	}
}

// wrappedValue decodes the one <value> that parent must hold, and
// parent's end tag.
func (s *scanner) wrappedValue(parent elem, depth int) (any, bool) {
	kind, el, ok := s.next()
	if !ok || kind == endTag || el != elValue {
		return nil, false
	}
	v, ok := s.value(depth, kind == emptyTag)
	return v, ok && s.end(parent)
}

// value decodes a <value> whose start tag has been read: untyped text, or
// one type element with only whitespace around it.
func (s *scanner) value(depth int, empty bool) (any, bool) {
	if depth > s.lim.MaxDepth {
		return nil, false
	}
	if empty {
		return "", true
	}
	t, ok := s.charData()
	if !ok {
		return nil, false
	}
	kind, el, ok := s.tag()
	switch {
	case !ok:
		return nil, false
	case kind == endTag:
		if el != elValue {
			return nil, false
		}
		return s.str(t), true
	case !isSpace(t):
		return nil, false
	}
	v, ok := s.typed(el, kind, depth)
	if !ok {
		return nil, false
	}
	if t, ok = s.charData(); !ok || !isSpace(t) {
		return nil, false
	}
	kind, el, ok = s.tag()
	return v, ok && kind == endTag && el == elValue
}

// typed decodes the type element el (its start tag read) inside a <value>
// at depth.
func (s *scanner) typed(el elem, kind tagKind, depth int) (any, bool) {
	switch el {
	case elStruct:
		if kind == emptyTag {
			return map[string]any{}, true
		}
		return s.structure(depth)
	case elArray:
		if kind == emptyTag {
			return nil, false
		}
		return s.array(depth)
	}
	t, ok := s.leaf(el, kind)
	if !ok {
		return nil, false
	}
	return s.scalar(el, t)
}

// structure decodes the members of a <struct> whose start tag has been
// read. A repeated name keeps the last value.
func (s *scanner) structure(depth int) (any, bool) {
	base := len(s.mems)
	for {
		kind, el, ok := s.next()
		if !ok {
			return nil, false
		}
		if kind == endTag && el == elStruct {
			break
		}
		if kind != startTag || el != elMember {
			return nil, false
		}
		kind, el, ok = s.next()
		if !ok || kind == endTag || el != elName {
			return nil, false
		}
		t, ok := s.leaf(el, kind)
		if !ok {
			return nil, false
		}
		name := s.name(t)
		v, ok := s.wrappedValue(elMember, depth+1)
		if !ok {
			return nil, false
		}
		s.mems = append(s.mems, member{name, v})
	}
	m := make(map[string]any, len(s.mems)-base)
	for _, mem := range s.mems[base:] {
		m[mem.name] = mem.v
	}
	clear(s.mems[base:])
	s.mems = s.mems[:base]
	return m, true
}

// array decodes the <data> of an <array> whose start tag has been read,
// and the array's end tag.
func (s *scanner) array(depth int) (any, bool) {
	kind, el, ok := s.next()
	if !ok || kind == endTag || el != elData {
		return nil, false
	}
	a := []any{}
	if kind == startTag {
		if a, ok = s.data(depth); !ok {
			return nil, false
		}
	}
	return a, s.end(elArray)
}

// data decodes the values of a <data> whose start tag has been read, and
// its end tag.
func (s *scanner) data(depth int) ([]any, bool) {
	base := len(s.vals)
	for {
		kind, el, ok := s.next()
		if !ok {
			return nil, false
		}
		if kind == endTag && el == elData {
			return s.pop(base), true
		}
		if kind == endTag || el != elValue {
			return nil, false
		}
		v, ok := s.value(depth+1, kind == emptyTag)
		if !ok {
			return nil, false
		}
		s.vals = append(s.vals, v)
	}
}

// pop returns the values collected since base as a new slice (never nil)
// of exactly their number, and forgets them. On failure nothing is
// popped: putScanner clears the stacks.
func (s *scanner) pop(base int) []any {
	a := make([]any, len(s.vals)-base)
	copy(a, s.vals[base:])
	clear(s.vals[base:]) // the pooled scanner must not keep them alive
	s.vals = s.vals[:base]
	return a
}

// response decodes a whole methodResponse document: its one value, or
// the fault it carries.
func (s *scanner) response() (v any, fault *Fault, ok bool) {
	if !s.prolog() {
		return nil, nil, false
	}
	if kind, el, ok := s.tag(); !ok || kind != startTag || el != elMethodResponse {
		return nil, nil, false
	}
	kind, el, ok := s.next()
	switch {
	case !ok || kind != startTag:
		return nil, nil, false
	case el == elParams:
		kind, el, ok = s.next()
		if !ok || kind != startTag || el != elParam {
			return nil, nil, false
		}
		if v, ok = s.wrappedValue(elParam, 1); !ok || !s.end(elParams) {
			return nil, nil, false
		}
	case el == elFault:
		fv, ok := s.wrappedValue(elFault, 1)
		if !ok {
			return nil, nil, false
		}
		var bad *Fault
		if fault, bad = faultFromValue(fv); bad != nil {
			return nil, nil, false
		}
	default:
		return nil, nil, false
	}
	if !s.end(elMethodResponse) || !s.epilog() {
		return nil, nil, false
	}
	return v, fault, true
}
