package rpc

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// xmlHeader starts every document we write. No encoding attribute: UTF-8 is
// XML's default, and it is what Python writes too.
const xmlHeader = `<?xml version="1.0"?>` + "\n"

// maxEncodeDepth stops the encoder on a value that contains itself (a map
// holding itself, say) long before the stack would overflow.
const maxEncodeDepth = 1000

// dateTimeFormat is the spec's dateTime.iso8601 spelling, the one Python's
// and kolo's parsers read; times are always sent in UTC.
const dateTimeFormat = "20060102T15:04:05"

// EncodeCall writes a methodCall document. The whole document is built
// before anything is written, so an error leaves w untouched.
func EncodeCall(w io.Writer, method string, params ...any) error {
	e := getEncoder()
	defer putEncoder(e)
	if err := e.call(method, params); err != nil {
		return err
	}
	_, err := w.Write(e.buf.Bytes())
	return err
}

// callBody is a call's document as a request body. Its bytes may be a
// pooled encoder's, which go back to the pool when the transport closes
// the body (it must, once it has sent it or given up): copying each
// document out of the encoder was a sixth of the bytes a coordinator
// allocated. A transport may close a body while another of its
// goroutines still reads it; mu makes that read see either the bytes or
// the end, never a buffer already reused.
type callBody struct {
	mu  sync.Mutex
	r   bytes.Reader
	e   *encoder // nil: the bytes are the body's own
	all []byte   // the whole body, for a poster; the caller's until Close
}

func newCallBody(b []byte, e *encoder) *callBody {
	body := &callBody{e: e, all: b}
	body.r.Reset(b)
	return body
}

// encodeCallBody is EncodeCall into a body, in a pooled encoder's buffer.
func encodeCallBody(method string, params []any) (*callBody, error) {
	e := getEncoder()
	if err := e.call(method, params); err != nil {
		putEncoder(e)
		return nil, err
	}
	return newCallBody(e.buf.Bytes(), e), nil
}

func (b *callBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.r.Read(p)
}

// Len is how many bytes are left to read.
func (b *callBody) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.r.Len()
}

// Close gives the buffer back; the body reads nothing after it. A second
// Close does nothing.
func (b *callBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.r.Reset(nil)
	if b.e != nil {
		putEncoder(b.e)
		b.e = nil
	}
	return nil
}

func (e *encoder) call(method string, params []any) error {
	if f := checkMethodName(method); f != nil {
		return fmt.Errorf("rpc: %s", f.Message)
	}
	e.write(xmlHeader + "<methodCall><methodName>" + method + "</methodName><params>")
	for i, p := range params {
		e.write("<param>")
		if err := e.value(p, 0); err != nil {
			return fmt.Errorf("rpc: param %d: %w", i+1, err)
		}
		e.write("</param>")
	}
	e.write("</params></methodCall>\n")
	return nil
}

// EncodeResponse writes a methodResponse document carrying v. An error
// (a value of a type XML-RPC cannot carry) leaves w untouched.
func EncodeResponse(w io.Writer, v any) error {
	e := getEncoder()
	defer putEncoder(e)
	if err := e.response(v); err != nil {
		return err
	}
	_, err := w.Write(e.buf.Bytes())
	return err
}

// response writes the methodResponse document carrying v.
func (e *encoder) response(v any) error {
	e.write(xmlHeader + "<methodResponse><params><param>")
	if err := e.value(v, 0); err != nil {
		return fmt.Errorf("rpc: result: %w", err)
	}
	e.write("</param></params></methodResponse>\n")
	return e.err
}

// EncodeFault writes a methodResponse document carrying the fault f. It
// cannot fail on f's content: characters XML cannot carry in the message
// are replaced with U+FFFD, because a fault must always reach the client.
func EncodeFault(w io.Writer, f *Fault) error {
	e := getEncoder()
	defer putEncoder(e)
	e.write(xmlHeader + "<methodResponse><fault>")
	fault := map[string]any{"faultCode": f.Code, "faultString": sanitize(f.Message)}
	if err := e.value(fault, 0); err != nil {
		return fmt.Errorf("rpc: fault: %w", err) // unreachable: both members are valid
	}
	e.write("</fault></methodResponse>\n")
	_, err := w.Write(e.buf.Bytes())
	return err
}

// encoder appends XML-RPC <value> elements to its buffer or, once it has
// a sink, hands them on in pieces of about flushAt bytes, so that a large
// document never sits in memory whole: the server counts a big reply's
// size with a sink that only counts, then writes it straight to the
// connection.
type encoder struct {
	buf  bytes.Buffer
	sink io.Writer // nil: keep everything in buf
	sent int64     // bytes handed to sink
	err  error     // the sink's first error; output after it is dropped
}

// flushAt is the size of the pieces an encoder with a sink hands on.
const flushAt = 32 << 10

func (e *encoder) write(s string) {
	if e.sink == nil {
		e.buf.WriteString(s)
		return
	}
	for len(s) > 0 {
		n := min(len(s), flushAt-e.buf.Len())
		e.buf.WriteString(s[:n])
		s = s[n:]
		e.spill()
	}
}

// writeBytes is write for bytes.
func (e *encoder) writeBytes(b []byte) {
	if e.sink == nil {
		e.buf.Write(b)
		return
	}
	for len(b) > 0 {
		n := min(len(b), flushAt-e.buf.Len())
		e.buf.Write(b[:n])
		b = b[n:]
		e.spill()
	}
}

// spill hands a full buffer to the sink.
func (e *encoder) spill() {
	if e.buf.Len() >= flushAt {
		e.flush()
	}
}

// flush hands what is buffered to the sink.
func (e *encoder) flush() {
	if e.err == nil && e.buf.Len() > 0 {
		n, err := e.sink.Write(e.buf.Bytes())
		e.sent += int64(n)
		e.err = err
	}
	e.buf.Reset()
}

// size is the length of what was encoded so far.
func (e *encoder) size() int64 { return e.sent + int64(e.buf.Len()) }

// value writes v as a <value>. The common types are matched directly;
// others (named types, typed slices and maps, pointers) go through reflect.
// Once the sink has failed, it stops and returns the sink's error.
func (e *encoder) value(v any, depth int) error {
	if e.err != nil {
		return e.err
	}
	if depth > maxEncodeDepth {
		return fmt.Errorf("values nested deeper than %d levels (a value that contains itself?)", maxEncodeDepth)
	}
	if r, ok := v.(Raw); ok {
		e.writeBytes(r.b) // a ValueWriter's <value> elements, whole
		return nil
	}
	e.write("<value>")
	var err error
	switch v := v.(type) {
	case nil:
		e.write("<nil/>")
	case string:
		err = e.str(v)
	case bool:
		e.boolean(v)
	case int:
		e.integer(int64(v))
	case int64:
		e.integer(v)
	case float64:
		err = e.double(v)
	case []byte:
		e.bytes(v)
	case time.Time:
		err = e.dateTime(v)
	case map[string]any:
		err = e.structMap(v, depth)
	case []any:
		e.write("<array><data>")
		for _, x := range v {
			if err = e.value(x, depth+1); err != nil {
				break
			}
		}
		e.write("</data></array>")
	default:
		err = e.reflectValue(reflect.ValueOf(v), depth)
	}
	e.write("</value>")
	return err
}

var timeType = reflect.TypeFor[time.Time]()

// reflectValue writes the inside of a <value> for the types the type switch
// in value does not name.
func (e *encoder) reflectValue(v reflect.Value, depth int) error {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			e.write("<nil/>")
			return nil
		}
		return e.reflectValue(v.Elem(), depth+1)
	case reflect.String:
		return e.str(v.String())
	case reflect.Bool:
		e.boolean(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.integer(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if v.Uint() > math.MaxInt64 {
			return fmt.Errorf("integer %d does not fit in i8", v.Uint())
		}
		e.integer(int64(v.Uint()))
	case reflect.Float32:
		return e.double(v.Float())
	case reflect.Float64:
		return e.double(v.Float())
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			e.bytes(v.Bytes())
			return nil
		}
		fallthrough
	case reflect.Array:
		e.write("<array><data>")
		for i := range v.Len() {
			if err := e.value(v.Index(i).Interface(), depth+1); err != nil {
				return err
			}
		}
		e.write("</data></array>")
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("cannot encode %s: struct member names must be strings", v.Type())
		}
		return e.structure(v, depth)
	case reflect.Struct:
		if v.Type() == timeType {
			return e.dateTime(v.Interface().(time.Time))
		}
		return fmt.Errorf("cannot encode %s: use map[string]any for a struct", v.Type())
	default:
		return fmt.Errorf("cannot encode %s", v.Type())
	}
	return nil
}

func (e *encoder) str(s string) error {
	e.write("<string>")
	if err := e.text(s); err != nil {
		return err
	}
	e.write("</string>")
	return nil
}

func (e *encoder) boolean(b bool) {
	if b {
		e.write("<boolean>1</boolean>")
	} else {
		e.write("<boolean>0</boolean>")
	}
}

// integer uses <int> whenever the value fits, because <i8> is an extension
// that strict peers (and kolo's i4-typed fields) may not read.
func (e *encoder) integer(n int64) {
	if n >= math.MinInt32 && n <= math.MaxInt32 {
		e.write("<int>")
		e.write(strconv.FormatInt(n, 10))
		e.write("</int>")
		return
	}
	e.write("<i8>")
	e.write(strconv.FormatInt(n, 10))
	e.write("</i8>")
}

// double writes plain decimal notation (no exponent), the only one the
// spec allows; the shortest such text parses back to the same float64.
func (e *encoder) double(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("cannot encode %v: XML-RPC doubles are finite", f)
	}
	e.write("<double>")
	e.write(strconv.FormatFloat(f, 'f', -1, 64))
	e.write("</double>")
	return nil
}

// bytes encodes b straight into the buffer, in pieces when there is a
// sink, so that a large value is never encoded whole.
func (e *encoder) bytes(b []byte) {
	e.write("<base64>")
	piece := len(b)
	if e.sink != nil {
		piece = 3 << 10 // a multiple of 3: padding only at the very end
	}
	for len(b) > 0 {
		n := min(len(b), piece)
		e.buf.Grow(base64.StdEncoding.EncodedLen(n)) // then AppendEncode writes in place
		e.buf.Write(base64.StdEncoding.AppendEncode(e.buf.AvailableBuffer(), b[:n]))
		b = b[n:]
		if e.sink != nil {
			e.spill()
		}
	}
	e.write("</base64>")
}

// dateTime sends t in UTC at second precision, without a zone suffix,
// because that is the only form Python's parser reads back.
func (e *encoder) dateTime(t time.Time) error {
	if err := checkYear(t); err != nil {
		return err
	}
	e.write("<dateTime.iso8601>")
	e.write(t.UTC().Format(dateTimeFormat))
	e.write("</dateTime.iso8601>")
	return nil
}

// checkYear refuses times whose UTC year does not have four digits: the
// format has no room for them.
func checkYear(t time.Time) error {
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return fmt.Errorf("cannot encode time %v: year outside 0000-9999", t)
	}
	return nil
}

// structure writes a map with string keys as a <struct>, members sorted by
// name so that the same value always gives the same bytes.
// structMap is structure for the common map[string]any, without reflect:
// its names sorted on the stack (a struct of up to 8 members allocates
// nothing), each value read straight from the map. Through reflect, each
// member cost an allocation for the names and one for the boxed value:
// 29 allocations for the reply to a txn of 8 puts.
func (e *encoder) structMap(m map[string]any, depth int) error {
	var small [8]string
	names := small[:0]
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	e.write("<struct>")
	for _, k := range names {
		e.write("<member><name>")
		if err := e.text(k); err != nil {
			return fmt.Errorf("member name: %w", err)
		}
		e.write("</name>")
		if err := e.value(m[k], depth+1); err != nil {
			return fmt.Errorf("member %s: %w", excerpt(k), err)
		}
		e.write("</member>")
	}
	e.write("</struct>")
	return nil
}

func (e *encoder) structure(m reflect.Value, depth int) error {
	keys := m.MapKeys()
	slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
	e.write("<struct>")
	for _, k := range keys {
		e.write("<member><name>")
		if err := e.text(k.String()); err != nil {
			return fmt.Errorf("member name: %w", err)
		}
		e.write("</name>")
		if err := e.value(m.MapIndex(k).Interface(), depth+1); err != nil {
			return fmt.Errorf("member %s: %w", excerpt(k.String()), err)
		}
		e.write("</member>")
	}
	e.write("</struct>")
	return nil
}

// text writes s as character data that any conforming parser reads back
// byte for byte. Besides < and &, it escapes > (so "]]>" cannot appear) and
// CR, which a parser would otherwise turn into LF. A string XML 1.0 cannot
// carry at all (invalid UTF-8, U+0000 and the other control characters,
// U+FFFE, U+FFFF) is an error: there is no escape for those.
func (e *encoder) text(s string) error {
	start := 0
	for i := 0; i < len(s); {
		// Most text is ASCII that needs no escape: skip it a byte at a time.
		if c := s[i]; c >= 0x20 && c < utf8.RuneSelf && c != '<' && c != '>' && c != '&' || c == '\t' || c == '\n' {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		var esc string
		switch {
		case r == utf8.RuneError && size == 1:
			return fmt.Errorf("string %s is not valid UTF-8", excerpt(s))
		case !isXMLChar(r):
			return fmt.Errorf("string %s holds %U, which XML cannot carry", excerpt(s), r)
		case r == '<':
			esc = "&lt;"
		case r == '>':
			esc = "&gt;"
		case r == '&':
			esc = "&amp;"
		case r == '\r':
			esc = "&#xD;"
		}
		if esc != "" {
			e.write(s[start:i])
			e.write(esc)
			start = i + size
		}
		i += size
	}
	e.write(s[start:])
	return nil
}

// isXMLChar reports whether r is in XML 1.0's Char production.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// sanitize replaces what XML cannot carry with U+FFFD.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if !isXMLChar(r) {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
}
