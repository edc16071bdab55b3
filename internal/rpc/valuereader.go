package rpc

import "bytes"

// ValueReader reads a reply's value one element at a time: the mirror of
// ValueWriter, for a caller that knows the shape it expects, so that no
// tree of any is built for it. Decoded as a tree, a coordinator's batch
// replies were a fifth of all it allocated: a slice per array, a boxed
// int per version.
//
// It reads with the fast path's scanner (fast*.go), so it knows only the
// XML real peers write, and it checks everything the fast path checks
// (the same calls do the reading). At the first thing it cannot read it
// fails, and stays failed: the caller then gets the reply decoded as Call
// decodes it (Client.CallReading), and its error, if any, is that path's.
//
// A value is read in two steps: it is opened (the reply's value is open
// to begin with; Next opens an array's next element), then read whole by
// Value, String, Bool or Int, or entered by Array.
type ValueReader struct {
	s     *scanner
	depth int  // of the values Next opens (the reply's value: 1)
	open  bool // a <value> start tag has been read, and nothing after it
	empty bool // ... and it was <value/>
	none  bool // Array met <data/>: the next Next ends the array
	bad   bool
}

// fail marks r failed and returns false.
func (r *ValueReader) fail() bool {
	r.bad = true
	return false
}

// Next opens the next element of the array being read, or, after its
// last, reads the array's end and returns false.
func (r *ValueReader) Next() bool {
	if r.bad || r.open {
		return r.fail()
	}
	if r.none {
		r.none = false
		return r.closeArray()
	}
	kind, el, ok := r.s.next()
	switch {
	case !ok:
		return r.fail()
	case kind == endTag && el == elData:
		return r.closeArray()
	case kind == endTag || el != elValue:
		return r.fail()
	}
	r.open, r.empty = true, kind == emptyTag
	return true
}

// closeArray reads what follows an array's </data> (or <data/>): its end
// tag, then its value's. It returns false, the array having no more
// elements; a failure shows in Failed.
func (r *ValueReader) closeArray() bool {
	s := r.s
	r.depth--
	if !s.end(elArray) {
		return r.fail()
	}
	t, ok := s.charData()
	if !ok || !isSpace(t) {
		return r.fail()
	}
	kind, el, ok := s.tag()
	if !ok || kind != endTag || el != elValue {
		return r.fail()
	}
	return false
}

// Array enters the open value, which must be an array: Next then opens
// its elements.
func (r *ValueReader) Array() bool {
	s := r.s
	if r.bad || !r.open || r.empty || r.depth > s.lim.MaxDepth {
		return r.fail()
	}
	r.open = false
	t, ok := s.charData()
	if !ok || !isSpace(t) {
		return r.fail()
	}
	kind, el, ok := s.tag()
	if !ok || kind != startTag || el != elArray {
		return r.fail()
	}
	kind, el, ok = s.next()
	if !ok || kind == endTag || el != elData {
		return r.fail()
	}
	r.none = kind == emptyTag
	r.depth++
	return true
}

// Value reads the open value whole, as the fast path decodes it.
func (r *ValueReader) Value() (any, bool) {
	if r.bad || !r.open {
		return nil, r.fail()
	}
	r.open = false
	v, ok := r.s.value(r.depth, r.empty)
	if !ok {
		return nil, r.fail()
	}
	return v, true
}

// String reads the open value, which must be a string: as value would,
// without boxing it.
func (r *ValueReader) String() (string, bool) {
	el, t, bare, ok := r.scalarText()
	if !ok || el != elString {
		return "", r.fail()
	}
	str := r.s.name(t)
	return str, bare || r.closeScalar()
}

// Data reads the open value, which must be a string or base64, as bytes
// (binary: it was base64): what Value would give as a string, or as
// bytes, without boxing it, nor copying a string twice.
func (r *ValueReader) Data() (data []byte, binary, ok bool) {
	el, t, bare, ok := r.scalarText()
	switch {
	case !ok:
		return nil, false, r.fail()
	case el == elString:
		data = append([]byte{}, t...)
	case el == elBase64:
		if data, ok = r.s.base64Bytes(t); !ok {
			return nil, false, r.fail()
		}
		binary = true
	default:
		return nil, false, r.fail()
	}
	return data, binary, bare || r.closeScalar()
}

// scalarText reads the open value up to a scalar's text: its type
// element (elString for text alone) and text, which the caller must take
// before it reads on. Unless bare (text alone, whose </value> has been
// read), closeScalar then reads the value's end.
func (r *ValueReader) scalarText() (el elem, t []byte, bare, ok bool) {
	s := r.s
	if r.bad || !r.open || r.depth > s.lim.MaxDepth {
		return 0, nil, false, r.fail()
	}
	r.open = false
	if r.empty {
		return elString, nil, true, true
	}
	if t, ok = s.charData(); !ok {
		return 0, nil, false, r.fail()
	}
	kind, el, ok := s.tag()
	switch {
	case !ok:
		return 0, nil, false, r.fail()
	case kind == endTag: // text alone is a string
		return elString, t, true, el == elValue || r.fail()
	case !isSpace(t) || el == elArray || el == elStruct:
		return 0, nil, false, r.fail()
	}
	t, ok = s.leaf(el, kind)
	return el, t, false, ok || r.fail()
}

// closeScalar reads what follows a scalar's element: whitespace, then
// </value>.
func (r *ValueReader) closeScalar() bool {
	s := r.s
	if t, ok := s.charData(); !ok || !isSpace(t) {
		return r.fail()
	}
	if kind, el, ok := s.tag(); !ok || kind != endTag || el != elValue {
		return r.fail()
	}
	return true
}

// Bool reads the open value, which must be a boolean.
func (r *ValueReader) Bool() (bool, bool) {
	v, _ := r.Value()
	b, ok := v.(bool)
	if !ok {
		return false, r.fail()
	}
	return b, true
}

// Int reads the open value, which must be an <int>, <i4> or <i8>.
func (r *ValueReader) Int() (int64, bool) {
	if r.bad || !r.open || r.empty || r.depth > r.s.lim.MaxDepth {
		return 0, r.fail()
	}
	// As value would, without boxing the number: whitespace, the
	// element, whitespace, </value>.
	s := r.s
	r.open = false
	t, ok := s.charData()
	if !ok || !isSpace(t) {
		return 0, r.fail()
	}
	kind, el, ok := s.tag()
	bits := 64
	switch {
	case !ok || kind != startTag:
		return 0, r.fail()
	case el == elInt || el == elI4:
		bits = 32
	case el != elI8:
		return 0, r.fail()
	}
	t, ok = s.leaf(el, kind)
	if !ok {
		return 0, r.fail()
	}
	n, ok := parseFastInt(t, bits)
	if !ok {
		return 0, r.fail()
	}
	if t, ok = s.charData(); !ok || !isSpace(t) {
		return 0, r.fail()
	}
	if kind, el, ok = s.tag(); !ok || kind != endTag || el != elValue {
		return 0, r.fail()
	}
	return n, true
}

// Failed reports whether r met something it could not read.
func (r *ValueReader) Failed() bool { return r.bad }

// readResponse reads a methodResponse document whose value read reads
// whole: false if the document, or read, took anything the fast path
// does not (a fault among them), and the caller must decode it again.
func (s *scanner) readResponse(read func(*ValueReader) bool) bool {
	if !s.prolog() {
		return false
	}
	for _, el := range []elem{elMethodResponse, elParams, elParam} {
		if kind, got, ok := s.next(); !ok || kind != startTag || got != el {
			return false
		}
	}
	kind, el, ok := s.next()
	if !ok || kind == endTag || el != elValue {
		return false
	}
	r := ValueReader{s: s, depth: 1, open: true, empty: kind == emptyTag}
	if !read(&r) || r.bad || r.open || r.depth != 1 {
		return false
	}
	return s.end(elParam) && s.end(elParams) && s.end(elMethodResponse) && s.epilog()
}

// callReading reads a methodCall document of one param, which the
// method's reader reads whole: false if the method has none, or the
// document or the reader took anything the fast path does not, and the
// caller must decode it again.
func (s *scanner) callReading(readerOf func(string) ParamReader) (method string, v any, ok bool) {
	if !s.prolog() {
		return "", nil, false
	}
	if kind, el, ok := s.tag(); !ok || kind != startTag || el != elMethodCall {
		return "", nil, false
	}
	kind, el, ok := s.next()
	if !ok || kind != startTag || el != elMethodName {
		return "", nil, false
	}
	t, ok := s.leaf(el, kind)
	if !ok {
		return "", nil, false
	}
	method = s.name(t)
	read := readerOf(method)
	if read == nil || checkMethodName(method) != nil {
		return "", nil, false
	}
	for _, el := range [...]elem{elParams, elParam} {
		if kind, got, ok := s.next(); !ok || kind != startTag || got != el {
			return "", nil, false
		}
	}
	kind, el, ok = s.next()
	if !ok || kind == endTag || el != elValue {
		return "", nil, false
	}
	r := ValueReader{s: s, depth: 1, open: true, empty: kind == emptyTag}
	v, ok = read(&r)
	if !ok || r.bad || r.open || r.depth != 1 {
		return "", nil, false
	}
	if !s.end(elParam) || !s.end(elParams) || !s.end(elMethodCall) || !s.epilog() {
		return "", nil, false
	}
	return method, v, true
}

// ReadCall lets the reader of the method doc calls read its one param, as
// a server with that method registered does, and says whether it read it
// whole (tests).
func ReadCall(doc []byte, lim Limits, read ParamReader) (any, bool) {
	s := getScanner(lim.orDefaults())
	defer putScanner(s)
	if rest := s.read(bytes.NewReader(doc), s.lim.MaxBodyBytes, int64(len(doc))); rest != nil {
		return nil, false
	}
	_, v, ok := s.callReading(func(string) ParamReader { return read })
	return v, ok
}

// parseFastInt is fastInt without the boxing, and without strconv's
// string: the decimal digits of t, with an optional sign, around which
// bytes.TrimSpace trims, in range for bits. Anything else (strconv would
// say why) is false.
func parseFastInt(t []byte, bits int) (int64, bool) {
	t = bytes.TrimSpace(t)
	neg := len(t) > 0 && t[0] == '-'
	if len(t) > 0 && (t[0] == '-' || t[0] == '+') {
		t = t[1:]
	}
	if len(t) == 0 || len(t) > 19 {
		return 0, false
	}
	limit := uint64(1) << (bits - 1) // |min|; max is one less
	var n uint64
	for _, c := range t {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0') // 19 digits cannot wrap a uint64
	}
	if neg {
		if n > limit {
			return 0, false
		}
		return -int64(n), true // n == limit: -limit wraps to itself, the minimum
	}
	if n >= limit {
		return 0, false
	}
	return int64(n), true
}

// ReadResponse lets read read the value of the methodResponse document
// doc, as Client.CallReading does, and says whether it read it whole.
func ReadResponse(doc []byte, lim Limits, read func(*ValueReader) bool) bool {
	_, done, _ := decodeResponseReading(bytes.NewReader(doc), lim, read)
	return done
}
