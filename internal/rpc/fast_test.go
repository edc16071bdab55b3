package rpc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/kolo/xmlrpc"
)

// fastCall runs only the fast path on body.
func fastCall(body []byte, lim Limits) (string, []any, bool) {
	s := getScanner(lim.orDefaults())
	defer putScanner(s)
	s.b = append(s.b[:0], body...)
	return s.call()
}

func fastResponse(body []byte, lim Limits) (any, *Fault, bool) {
	s := getScanner(lim.orDefaults())
	defer putScanner(s)
	s.b = append(s.b[:0], body...)
	return s.response()
}

// sameError reports whether two decoding errors are the same to a caller:
// both nil, both faults with the same code and message, or both other
// errors with the same text.
func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	fa, aok := a.(*Fault)
	fb, bok := b.(*Fault)
	if aok || bok {
		return aok && bok && *fa == *fb
	}
	return a.Error() == b.Error()
}

// checkSameCall fails t unless DecodeCall (fast path, then fallback) and
// the slow path alone agree on body.
func checkSameCall(t *testing.T, body []byte, lim Limits) {
	t.Helper()
	m1, p1, err1 := DecodeCall(bytes.NewReader(body), lim)
	m2, p2, err2 := decodeCallXML(bytes.NewReader(body), lim)
	if !sameError(err1, err2) || m1 != m2 || !reflect.DeepEqual(p1, p2) {
		t.Fatalf("DecodeCall differs from the slow path on %q (limits %+v):\nfast %q %#v %v\nslow %q %#v %v",
			body, lim, m1, p1, err1, m2, p2, err2)
	}
}

func checkSameResponse(t *testing.T, body []byte, lim Limits) {
	t.Helper()
	v1, err1 := DecodeResponse(bytes.NewReader(body), lim)
	v2, err2 := decodeResponseXML(bytes.NewReader(body), lim)
	if !sameError(err1, err2) || !reflect.DeepEqual(v1, v2) {
		t.Fatalf("DecodeResponse differs from the slow path on %q (limits %+v):\nfast %#v %v\nslow %#v %v",
			body, lim, v1, err1, v2, err2)
	}
}

// Documents as Python's xmlrpc.client writes them (python3 -c
// 'print(xmlrpc.client.dumps(...))'): newlines between elements,
// single-quoted declaration, raw CRLF in strings.
var pythonDocs = []string{
	"<?xml version='1.0'?>\n<methodCall>\n<methodName>put</methodName>\n<params>\n<param>\n<value><string>key-42</string></value>\n</param>\n<param>\n<value><string>vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv</string></value>\n</param>\n</params>\n</methodCall>\n",
	"<?xml version='1.0'?>\n<methodCall>\n<methodName>m</methodName>\n<params>\n<param>\n<value><base64>\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nAAAAAAAAAAAAAAAAAA==\n</base64></value>\n</param>\n<param>\n<value><nil/></value></param>\n<param>\n<value><int>1048576</int></value>\n</param>\n<param>\n<value><double>1.5</double></value>\n</param>\n<param>\n<value><boolean>1</boolean></value>\n</param>\n<param>\n<value><array><data>\n<value><int>1</int></value>\n<value><string>a</string></value>\n</data></array></value>\n</param>\n<param>\n<value><dateTime.iso8601>20240101T00:00:00</dateTime.iso8601></value>\n</param>\n<param>\n<value><string>a\r\nb\t&lt;&gt;&amp;\"'</string></value>\n</param>\n</params>\n</methodCall>\n",
	"<?xml version='1.0'?>\n<methodCall>\n<methodName>first</methodName>\n<params>\n<param>\n<value><struct>\n<member>\n<name>a</name>\n<value><int>1</int></value>\n</member>\n<member>\n<name>&lt;&amp;&gt;</name>\n<value><string>k</string></value>\n</member>\n<member>\n<name></name>\n<value><string>empty name</string></value>\n</member>\n</struct></value>\n</param>\n</params>\n</methodCall>\n",
	"<?xml version='1.0'?>\n<methodCall>\n<methodName>system.multicall</methodName>\n<params>\n<param>\n<value><array><data>\n<value><struct>\n<member>\n<name>methodName</name>\n<value><string>add</string></value>\n</member>\n<member>\n<name>params</name>\n<value><array><data>\n<value><int>1</int></value>\n<value><int>2</int></value>\n</data></array></value>\n</member>\n</struct></value>\n</data></array></value>\n</param>\n</params>\n</methodCall>\n",
}

var pythonResponses = []string{
	"<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><boolean>1</boolean></value>\n</param>\n</params>\n</methodResponse>\n",
	"<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>2</int></value>\n</member>\n<member>\n<name>faultString</name>\n<value><string>conflict &lt;&amp;&gt;</string></value>\n</member>\n</struct></value>\n</fault>\n</methodResponse>\n",
}

// The fast path takes what real peers send, and decodes it exactly as
// the slow path does.
func TestFastPathTakesPeerDocuments(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxBodyBytes = 1 << 20
	var calls, responses [][]byte
	for _, d := range pythonDocs {
		calls = append(calls, []byte(d))
	}
	for _, d := range pythonResponses {
		responses = append(responses, []byte(d))
	}
	for _, tc := range roundTrips {
		var c, r bytes.Buffer
		if err := EncodeCall(&c, "echo", tc.in, tc.in); err != nil {
			t.Fatal(err)
		}
		if err := EncodeResponse(&r, tc.in); err != nil {
			t.Fatal(err)
		}
		calls, responses = append(calls, c.Bytes()), append(responses, r.Bytes())
		// As Client.Call sends it, when it can.
		if ka, err := toKolo(tc.in, 0); err == nil {
			kb, err := xmlrpc.EncodeMethodCall("echo", ka)
			if err != nil {
				t.Fatal(err)
			}
			calls = append(calls, kb)
		}
	}
	var f bytes.Buffer
	if err := EncodeFault(&f, Faultf(Conflict, "conflict on key \"k\" <&>\r\n")); err != nil {
		t.Fatal(err)
	}
	responses = append(responses, f.Bytes(), batchReply(64))
	calls = append(calls, koloBatchCall(t, 64))

	for _, body := range calls {
		if _, _, ok := fastCall(body, lim); !ok {
			t.Errorf("fast path gave up on call %s", body)
		}
		checkSameCall(t, body, lim)
	}
	for _, body := range responses {
		if _, _, ok := fastResponse(body, lim); !ok {
			t.Errorf("fast path gave up on response %q", excerpt(string(body)))
		}
		checkSameResponse(t, body, lim)
	}
}

// koloBatchCall is a participant batch of n prepares as the coordinator
// sends it, through kolo.
func koloBatchCall(t testing.TB, n int) []byte {
	calls := make([]any, n)
	for i := range calls {
		calls[i] = []any{"prepare", fmt.Sprintf("c1-%016x", i), fmt.Sprintf("key\t<&>%d", i), "put", fmt.Sprintf("value %d \"quoted\"\r\n", i)}
	}
	body, err := xmlrpc.EncodeMethodCall("batch", calls)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// batchReply is a participant's reply to n prepares, as participant/wire.go
// makes it.
func batchReply(n int) []byte {
	replies := make([]any, n)
	for i := range replies {
		replies[i] = []any{"yes", true, false, ""}
	}
	var buf bytes.Buffer
	if err := EncodeResponse(&buf, replies); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// Outside its subset the fast path gives up, and the slow path answers.
func TestFastPathFallsBack(t *testing.T) {
	for _, body := range []string{
		oneParam("<string>a<!-- c -->b</string>"),
		oneParam("<string><![CDATA[<&>]]></string>"),
		oneParam("<ex:nil/>"),
		oneParam("<value type=\"x\">1</value>"),
		oneParam("<int >1</int>"),
		oneParam("<int>1</int >"),
		oneParam("<string>]]></string>"),
		oneParam("<string>&nbsp;</string>"),
		oneParam("<string>&#X41;</string>"),
		oneParam("<string>&#0;</string>"),
		oneParam("<string>\x01</string>"),
		oneParam("<string>\xff</string>"),
		oneParam("<string>\xed\xa0\x80</string>"), // a surrogate in UTF-8
		oneParam("<int>1</int><int>2</int>"),
		"<!DOCTYPE methodCall><methodCall><methodName>m</methodName></methodCall>",
		"\ufeff\ufeff<methodCall><methodName>m</methodName></methodCall>", // one BOM is allowed, not two
		"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><methodCall><methodName>m</methodName></methodCall>",
		"<?xml version=\"1.1\"?><methodCall><methodName>m</methodName></methodCall>",
		"<methodCall><methodName>m</methodName></methodCall><!-- end -->",
		"<methodCall><methodName>m</methodName></methodCall><?pi x?>",
		"<methodCall><methodName>m</methodName></methodCall",
		"<methodCall><methodName>a b</methodName></methodCall>",
		nested(DefaultLimits().MaxDepth + 1),
		callXML(strings.Repeat("<param><value>1</value></param>", DefaultLimits().MaxParams+1)),
	} {
		if _, _, ok := fastCall([]byte(body), DefaultLimits()); ok {
			t.Errorf("fast path took %q", body)
		}
		checkSameCall(t, []byte(body), DefaultLimits())
	}
}

// Text reaches the value exactly as encoding/xml gives it: references
// replaced, CR and CRLF read as LF, whitespace kept.
func TestFastPathText(t *testing.T) {
	for _, text := range []string{
		"", " ", "  two  words \n", "a\r\nb\rc", "\r\r\n", "\r\n\r\n", "&#13;\n", "\r&#10;",
		"&#xD;&#x1F600;&lt;&amp;&gt;&quot;&apos;", "&#0013;&#x00000041;", "&#x10FFFF;", "&#x110000;", "&#xD800;", "&#xDFFF;",
		"&#xFFFE;", "&#xFFFD;", "&#9;&#xa;&#xA;", "]]&gt;", "]&#93;>", "]]\r>", "]>]>", "]]", "a]]]>",
		"é ü 中文 😀", "\u00a0", "\ue000\ufffd", "\t\n", "&", "&lt", "&#;", "&#x;", "&#12a;", "&amp;amp;",
		"&#99999999999999999999999;", "<", ">", "\x7f", "\u0085",
	} {
		for _, v := range []string{text, "<string>" + text + "</string>", "<struct><member><name>" + text + "</name><value/></member></struct>"} {
			checkSameCall(t, []byte(oneParam(v)), DefaultLimits())
		}
	}
}

// Scalars decode as scalars.go decodes them, Unicode spaces included.
func TestFastPathScalars(t *testing.T) {
	for _, v := range []string{
		"<int> 7 </int>", "<int>\u00a07\u3000</int>", "<int>+5</int>", "<int>-0</int>", "<int>2147483648</int>",
		"<i4>-2147483648</i4>", "<i8>-9223372036854775808</i8>", "<i8>9223372036854775808</i8>", "<int>1_0</int>",
		"<int>0x10</int>", "<int></int>", "<boolean> 1\n</boolean>", "<boolean>01</boolean>", "<boolean/>",
		"<double>1e+100</double>", "<double>.5</double>", "<double>5.</double>", "<double>1e999</double>",
		"<double>1e-999</double>", "<double>-0</double>", "<double>1_0</double>", "<double>Inf</double>", "<double>0x1p3</double>",
		"<base64>QUJD\r\n REVG\tR0g=</base64>", "<base64>QQ=\n=</base64>", "<base64>QQ</base64>", "<base64/>", "<base64>&#x51;UJD</base64>",
		"<dateTime.iso8601> 19980717T14:08:55 </dateTime.iso8601>", "<dateTime.iso8601>x</dateTime.iso8601>",
		"<nil/>", "<nil> </nil>", "<nil>x</nil>", "<string/>", "<struct/>", "<array/>", "<array><data/></array>",
	} {
		checkSameCall(t, []byte(oneParam(v)), DefaultLimits())
		checkSameResponse(t, []byte(responseValue(v)), DefaultLimits())
	}
}

// However the body arrives (too long, cut by an error, in small pieces,
// through http.MaxBytesReader), DecodeCall answers what the slow path
// answers reading the same body the same way. (Not tested: a reader whose
// answers depend on how its reads are sliced, like iotest.TimeoutReader,
// rather than on the bytes read; the fast path reads in other slices.)
func TestFastPathReaders(t *testing.T) {
	body := []byte(pythonDocs[0])
	n := int64(len(body))
	readers := map[string]func() io.Reader{
		"one byte at a time": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(body)) },
		"data with EOF":      func() io.Reader { return iotest.DataErrReader(bytes.NewReader(body)) },
		"error midway": func() io.Reader {
			return io.MultiReader(bytes.NewReader(body[:n/2]), iotest.ErrReader(errors.New("connection reset")))
		},
		"MaxBytesReader":     func() io.Reader { return http.MaxBytesReader(nil, io.NopCloser(bytes.NewReader(body)), n-1) },
		"MaxBytesReader fit": func() io.Reader { return http.MaxBytesReader(nil, io.NopCloser(bytes.NewReader(body)), n) },
	}
	for name, r := range readers {
		for _, max := range []int64{n - 10, n - 1, n, n + 1, 0} {
			lim := Limits{MaxBodyBytes: max}
			m1, p1, err1 := DecodeCall(r(), lim)
			m2, p2, err2 := decodeCallXML(r(), lim)
			if !sameError(err1, err2) || m1 != m2 || !reflect.DeepEqual(p1, p2) {
				t.Errorf("%s, limit %d:\nfast %q %#v %v\nslow %q %#v %v", name, max, m1, p1, err1, m2, p2, err2)
			}
			v1, err1 := DecodeResponse(r(), lim)
			v2, err2 := decodeResponseXML(r(), lim)
			if !sameError(err1, err2) || !reflect.DeepEqual(v1, v2) {
				t.Errorf("%s, limit %d: response:\nfast %#v %v\nslow %#v %v", name, max, v1, err1, v2, err2)
			}
		}
	}
}
