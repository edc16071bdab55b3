package rpc

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// callXML wraps params XML in a methodCall.
func callXML(params string) string {
	return `<?xml version="1.0"?><methodCall><methodName>m</methodName><params>` + params + `</params></methodCall>`
}

// oneParam wraps value XML in a one-param methodCall.
func oneParam(value string) string { return callXML("<param><value>" + value + "</value></param>") }

func nested(depth int) string {
	return oneParam(strings.Repeat("<array><data><value>", depth-1) + "<int>1</int>" + strings.Repeat("</value></data></array>", depth-1))
}

func TestDecodeCallMalformed(t *testing.T) {
	lim := DefaultLimits()
	for _, tc := range []struct {
		name string
		body string
		code int
		msg  string // part of the message
	}{
		{"empty body", "", ParseError, "no root element"},
		{"not XML", "hello", ParseError, "text before the root"},
		{"JSON", `{"method":"m"}`, ParseError, ""},
		{"truncated", `<methodCall><methodName>m</methodName><params><param><value><int>1`, ParseError, "unexpected"},
		{"mismatched tags", `<methodCall><methodName>m</methodCall>`, ParseError, "malformed XML"},
		{"invalid UTF-8", oneParam("<string>a\xffb</string>"), ParseError, "UTF-8"},
		{"U+0000 as &#0;", oneParam("<string>&#0;</string>"), ParseError, "illegal character"},
		{"raw U+0001", oneParam("<string>\x01</string>"), ParseError, "illegal character"},
		{"U+FFFE as &#xFFFE;", oneParam("&#xFFFE;"), ParseError, "illegal character"},
		{"undefined entity", oneParam("<string>&nbsp;</string>"), ParseError, "entity"},
		{"latin-1 declared", `<?xml version="1.0" encoding="ISO-8859-1"?><methodCall><methodName>m</methodName></methodCall>`, ParseError, "ISO-8859-1"},
		{"DOCTYPE", `<!DOCTYPE methodCall><methodCall><methodName>m</methodName></methodCall>`, InvalidRequest, "DOCTYPE"},
		{"second root", `<methodCall><methodName>m</methodName></methodCall><methodCall/>`, ParseError, "after the root"},
		{"text after root", `<methodCall><methodName>m</methodName></methodCall>junk`, ParseError, "after the root"},
		{"wrong root", `<methodResponse><params/></methodResponse>`, InvalidRequest, "want <methodCall>"},
		{"missing methodName", `<methodCall><params/></methodCall>`, InvalidRequest, "missing <methodName>"},
		{"no methodName at all", `<methodCall></methodCall>`, InvalidRequest, "missing <methodName>"},
		{"empty methodName", `<methodCall><methodName></methodName></methodCall>`, InvalidRequest, "empty method name"},
		{"bad methodName chars", `<methodCall><methodName>a b</methodName></methodCall>`, InvalidRequest, "only A-Z"},
		{"two methodNames", `<methodCall><methodName>a</methodName><methodName>b</methodName></methodCall>`, InvalidRequest, "unexpected <methodName>"},
		{"element in methodName", `<methodCall><methodName><b>x</b></methodName></methodCall>`, InvalidRequest, "unexpected <b>"},
		{"junk element", `<methodCall><methodName>m</methodName><junk/></methodCall>`, InvalidRequest, "unexpected <junk>"},
		{"junk text", `<methodCall><methodName>m</methodName>junk</methodCall>`, InvalidRequest, "unexpected text"},
		{"junk in params", callXML("<value><int>1</int></value>"), InvalidRequest, "unexpected <value> in <params>"},
		{"param without value", callXML("<param></param>"), InvalidRequest, "without a <value>"},
		{"param with two values", callXML("<param><value>a</value><value>b</value></param>"), InvalidRequest, "unexpected <value> in <param>"},
		{"unknown type", oneParam("<float>1</float>"), InvalidRequest, "unknown type <float>"},
		{"two types", oneParam("<int>1</int><int>2</int>"), InvalidRequest, "both"},
		{"text and type", oneParam("x<int>1</int>"), InvalidRequest, "text before <int>"},
		{"type and text", oneParam("<int>1</int>x"), InvalidRequest, "text after <int>"},
		{"element in string", oneParam("<string><b/></string>"), InvalidRequest, "unexpected <b>"},
		{"int with letters", oneParam("<int>12a</int>"), ParseError, `"12a" is not an integer`},
		{"empty int", oneParam("<int></int>"), ParseError, "not an integer"},
		{"i4 overflow", oneParam("<int>99999999999</int>"), ParseError, "does not fit in 32 bits"},
		{"i4 tag overflow", oneParam("<i4>2147483648</i4>"), ParseError, "does not fit in 32 bits"},
		{"i8 overflow", oneParam("<i8>9223372036854775808</i8>"), ParseError, "does not fit in 64 bits"},
		{"boolean 2", oneParam("<boolean>2</boolean>"), ParseError, "want 0 or 1"},
		{"boolean true", oneParam("<boolean>true</boolean>"), ParseError, "want 0 or 1"},
		{"double text", oneParam("<double>one</double>"), ParseError, "not a decimal"},
		{"double NaN", oneParam("<double>NaN</double>"), ParseError, "not a decimal"},
		{"double hex", oneParam("<double>0x1p3</double>"), ParseError, "not a decimal"},
		{"double overflow", oneParam("<double>1e999</double>"), ParseError, "finite"},
		{"bad base64", oneParam("<base64>!!!!</base64>"), ParseError, "base64"},
		{"truncated base64", oneParam("<base64>QUJD!</base64>"), ParseError, "base64"},
		{"bad date", oneParam("<dateTime.iso8601>yesterday</dateTime.iso8601>"), ParseError, "dateTime"},
		{"bad month", oneParam("<dateTime.iso8601>20241301T00:00:00</dateTime.iso8601>"), ParseError, "dateTime"},
		{"fractional seconds", oneParam("<dateTime.iso8601>20240101T00:00:00.5</dateTime.iso8601>"), ParseError, "dateTime"},
		{"year -1 in UTC", oneParam("<dateTime.iso8601>00000101T00:00:00+01:00</dateTime.iso8601>"), ParseError, "year outside"},
		{"year 10000 in UTC", oneParam("<dateTime.iso8601>9999-12-31T23:59:59-01:00</dateTime.iso8601>"), ParseError, "year outside"},
		{"nil with text", oneParam("<nil>x</nil>"), ParseError, "empty"},
		{"struct junk", oneParam("<struct><x/></struct>"), InvalidRequest, "unexpected <x> in <struct>"},
		{"member without name", oneParam("<struct><member><value>1</value></member></struct>"), InvalidRequest, "must start with <name>"},
		{"member without value", oneParam("<struct><member><name>a</name></member></struct>"), InvalidRequest, "without a <value>"},
		{"array without data", oneParam("<array></array>"), InvalidRequest, "one <data>"},
		{"array with two data", oneParam("<array><data/><data/></array>"), InvalidRequest, "unexpected <data> in <array>"},
		{"array junk", oneParam("<array><data><int>1</int></data></array>"), InvalidRequest, "unexpected <int> in <data>"},
		{"depth over limit", nested(lim.MaxDepth + 1), TooLarge, "nested deeper than 32 levels"},
		{"struct depth over limit", oneParam(strings.Repeat("<struct><member><name>a</name><value>", lim.MaxDepth) + "1" +
			strings.Repeat("</value></member></struct>", lim.MaxDepth)), TooLarge, "nested deeper than 32"},
		{"too many params", callXML(strings.Repeat("<param><value>1</value></param>", lim.MaxParams+1)), TooLarge, "more than 64 params"},
		{"body over limit", oneParam(strings.Repeat("x", int(lim.MaxBodyBytes))), TooLarge, "request body exceeds 4194304 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method, params, err := DecodeCall(strings.NewReader(tc.body), lim)
			var f *Fault
			if !errors.As(err, &f) {
				t.Fatalf("got %q %v, err %v; want fault %d", method, params, err, tc.code)
			}
			if f.Code != tc.code || !strings.Contains(f.Message, tc.msg) {
				t.Errorf("got fault %d %q, want %d containing %q", f.Code, f.Message, tc.code, tc.msg)
			}
		})
	}
}

func TestDecodeCallAccepts(t *testing.T) {
	when := time.Date(1998, 7, 17, 14, 8, 55, 0, time.UTC)
	for _, tc := range []struct {
		name string
		body string
		want []any
	}{
		{"no params element", `<methodCall><methodName>m</methodName></methodCall>`, []any{}},
		{"empty params", `<methodCall><methodName>m</methodName><params/></methodCall>`, []any{}},
		{"whitespace and comments", "<?xml version='1.0' encoding='UTF-8'?>\n<!-- hi -->\n<methodCall>\n <methodName>m</methodName>\n <params>\n  <param>\n   <value> <int> 7 </int> </value>\n  </param>\n </params>\n</methodCall>\n<!-- bye -->\n", []any{int64(7)}},
		{"untyped keeps whitespace", oneParam("  two  words \n"), []any{"  two  words \n"}},
		{"untyped empty", oneParam(""), []any{""}},
		{"empty value element", callXML("<param><value/></param>"), []any{""}},
		{"empty string element", oneParam("<string/>"), []any{""}},
		{"string keeps whitespace", oneParam("<string> a </string>"), []any{" a "}},
		{"raw CRLF becomes LF", oneParam("<string>a\r\nb\rc</string>"), []any{"a\nb\nc"}},
		{"char refs", oneParam("<string>&#xD;&#x1F600;&lt;&amp;&gt;&quot;&apos;</string>"), []any{"\r😀<&>\"'"}},
		{"CDATA", oneParam("<string><![CDATA[<&]]>x</string>"), []any{"<&x"}},
		{"comment splits text", oneParam("<string>a<!-- c -->b</string>"), []any{"ab"}},
		{"i4 and i8", oneParam("<i4>-2147483648</i4>") + "", []any{int64(-2147483648)}},
		{"plus sign", oneParam("<int>+5</int>"), []any{int64(5)}},
		{"i8", oneParam("<i8>-9223372036854775808</i8>"), []any{int64(-9223372036854775808)}},
		{"booleans", callXML("<param><value><boolean>1</boolean></value></param><param><value><boolean>0</boolean></value></param>"), []any{true, false}},
		{"double forms", callXML("<param><value><double>-0.5</double></value></param><param><value><double>1e+100</double></value></param><param><value><double>3</double></value></param>"), []any{-0.5, 1e100, 3.0}},
		{"base64 with line breaks", oneParam("<base64>\nQUJD\nREVG\r\n R0g=\n</base64>"), []any{[]byte("ABCDEFGH")}},
		{"empty base64", oneParam("<base64/>"), []any{[]byte{}}},
		{"date compact", oneParam("<dateTime.iso8601>19980717T14:08:55</dateTime.iso8601>"), []any{when}},
		{"date Z", oneParam("<dateTime.iso8601>19980717T14:08:55Z</dateTime.iso8601>"), []any{when}},
		{"date offset", oneParam("<dateTime.iso8601>19980717T16:08:55+02:00</dateTime.iso8601>"), []any{when}},
		{"date hyphens", oneParam("<dateTime.iso8601>1998-07-17T14:08:55</dateTime.iso8601>"), []any{when}},
		{"date hyphens offset", oneParam("<dateTime.iso8601>1998-07-17T09:08:55-05:00</dateTime.iso8601>"), []any{when}},
		{"nil", oneParam("<nil/>"), []any{nil}},
		{"apache ex:nil", `<methodCall xmlns:ex="http://ws.apache.org/xmlrpc/namespaces/extensions"><methodName>m</methodName><params><param><value><ex:nil/></value></param></params></methodCall>`, []any{nil}},
		{"struct, last duplicate wins", oneParam("<struct><member><name> k </name><value>1</value></member><member><name>d</name><value>x</value></member><member><name>d</name><value>y</value></member></struct>"),
			[]any{map[string]any{" k ": "1", "d": "y"}}},
		{"empty struct and array", callXML("<param><value><struct/></value></param><param><value><array><data/></array></value></param>"), []any{map[string]any{}, []any{}}},
		{"depth at limit", nested(DefaultLimits().MaxDepth), nil},
		{"params at limit", callXML(strings.Repeat("<param><value>1</value></param>", DefaultLimits().MaxParams)), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method, params, err := DecodeCall(strings.NewReader(tc.body), DefaultLimits())
			if err != nil {
				t.Fatalf("DecodeCall: %v", err)
			}
			if method != "m" {
				t.Errorf("method = %q", method)
			}
			if tc.want != nil && !reflect.DeepEqual(params, tc.want) {
				t.Errorf("params = %#v\nwant %#v", params, tc.want)
			}
		})
	}
}

func TestDecodeCallMethodNames(t *testing.T) {
	for _, name := range []string{"put", "system.listMethods", "a_b:c/d.E9"} {
		got, _, err := DecodeCall(strings.NewReader("<methodCall><methodName>"+name+"</methodName></methodCall>"), Limits{})
		if err != nil || got != name {
			t.Errorf("method %q: got %q, %v", name, got, err)
		}
	}
}

func TestDecodeResponseErrors(t *testing.T) {
	for _, tc := range []struct{ name, body, msg string }{
		{"not XML", "<html>oops", "malformed"},
		{"call, not response", `<methodCall><methodName>m</methodName></methodCall>`, "want <methodResponse>"},
		{"no value", `<methodResponse><params></params></methodResponse>`, "one <param>"},
		{"two values", `<methodResponse><params><param><value>1</value></param><param><value>2</value></param></params></methodResponse>`, "unexpected <param>"},
		{"empty", `<methodResponse/>`, "<params> or <fault>"},
		{"fault not a struct", `<methodResponse><fault><value>x</value></fault></methodResponse>`, "want struct"},
		{"fault without code", `<methodResponse><fault><value><struct><member><name>faultString</name><value>x</value></member></struct></value></fault></methodResponse>`, "faultCode"},
		{"params and fault", `<methodResponse><params><param><value>1</value></param></params><fault/></methodResponse>`, "unexpected <fault>"},
		{"too large", `<methodResponse><params><param><value>` + strings.Repeat("x", 300) + `</value></param></params></methodResponse>`, "response body exceeds 256 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := DecodeResponse(strings.NewReader(tc.body), Limits{MaxBodyBytes: 256})
			if err == nil {
				t.Fatalf("got %#v, want an error", v)
			}
			if _, isFault := asFault(err); isFault {
				t.Errorf("a broken reply came back as a *Fault: %v", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not contain %q", err, tc.msg)
			}
		})
	}
}

// A UTF-8 byte order mark may start a document, before the XML
// declaration or without one; anywhere else it is text, refused.
func TestByteOrderMark(t *testing.T) {
	const bom = "\xef\xbb\xbf"
	call := `<methodCall><methodName>m</methodName><params><param><value>x</value></param></params></methodCall>`
	for _, body := range []string{bom + `<?xml version="1.0"?>` + call, bom + call, bom + "\n " + call} {
		for name, decode := range map[string]func(io.Reader, Limits) (string, []any, error){"DecodeCall": DecodeCall, "slow path": decodeCallXML} {
			m, p, err := decode(strings.NewReader(body), Limits{})
			if err != nil || m != "m" || len(p) != 1 || p[0] != "x" {
				t.Errorf("%s(%q): %q %v %v", name, body[:12], m, p, err)
			}
		}
		if _, _, ok := fastCall([]byte(body), DefaultLimits()); !ok {
			t.Errorf("the fast path gave up on %q", body[:12])
		}
	}
	for _, body := range []string{bom + bom + call, " " + bom + call, `<?xml version="1.0"?>` + bom + call} {
		if _, _, err := DecodeCall(strings.NewReader(body), Limits{}); err == nil {
			t.Errorf("%q: accepted", body[:12])
		}
	}
	v, err := DecodeResponse(strings.NewReader(bom+`<methodResponse><params><param><value>ok</value></param></params></methodResponse>`), Limits{})
	if err != nil || v != "ok" {
		t.Errorf("response with a BOM: %v %v", v, err)
	}
}

// With the body's length known (the server passes Content-Length), the
// body is read into one buffer of that size instead of doubling one: a
// long value costs the buffer and its string, not twice the buffer more.
func TestDecodeKnownLength(t *testing.T) {
	body := []byte(oneParam(strings.Repeat("x", 2<<20)))
	n := allocated(func() {
		if _, _, err := decodeCall(bytes.NewReader(body), Limits{}, int64(len(body)), nil); err != nil {
			t.Fatal(err)
		}
	})
	if n > uint64(len(body))*5/2 {
		t.Errorf("decoding a %d-byte body of known length allocated %d bytes", len(body), n)
	}
}
