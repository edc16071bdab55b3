package rpc

import (
	"bytes"
	"encoding/base64"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kolo/xmlrpc"
)

// hardStrings are the strings an XML encoder most easily gets wrong.
var hardStrings = []string{
	"",
	"plain",
	"cr\rx",
	"crlf\r\nx",
	"lf\nx",
	"tab\tx",
	"]]>",
	"a]]>b]]]]>",
	"<tag attr=\"x\">&amp;</tag>",
	"&",
	"'quotes\"",
	"  leading and trailing  ",
	" ",
	"\n\n",
	"\r",
	"emoji 😀 and 𝄞 (non-BMP)",
	"é ü 中文 \u00a0 \ufffd \ue000 \ufffd",
	strings.Repeat("x", 100000),
}

var (
	utc  = time.Date(2024, 2, 29, 23, 59, 58, 0, time.UTC)
	east = time.FixedZone("east", 2*3600+30*60)
)

// roundTrips lists Go values with the value they decode to.
var roundTrips = []struct {
	name     string
	in, want any
}{
	{"nil", nil, nil},
	{"true", true, true},
	{"false", false, false},
	{"int", 42, int64(42)},
	{"int8", int8(-8), int64(-8)},
	{"uint16", uint16(65535), int64(65535)},
	{"int32 max", int32(math.MaxInt32), int64(math.MaxInt32)},
	{"int32 min", int32(math.MinInt32), int64(math.MinInt32)},
	{"i8 above int32", int64(math.MaxInt32) + 1, int64(math.MaxInt32) + 1},
	{"i8 below int32", int64(math.MinInt32) - 1, int64(math.MinInt32) - 1},
	{"int64 max", int64(math.MaxInt64), int64(math.MaxInt64)},
	{"int64 min", int64(math.MinInt64), int64(math.MinInt64)},
	{"uint32 max", uint32(math.MaxUint32), int64(math.MaxUint32)},
	{"double", 1.5, 1.5},
	{"double tiny", 5e-324, 5e-324},
	{"double huge", -1.7976931348623157e308, -1.7976931348623157e308},
	{"double third", 1.0 / 3, 1.0 / 3},
	{"float32", float32(0.1), float64(float32(0.1))},
	{"bytes", []byte{0, 1, 2, 0xff, '<', '&'}, []byte{0, 1, 2, 0xff, '<', '&'}},
	{"bytes empty", []byte{}, []byte{}},
	{"bytes nil", []byte(nil), []byte{}},
	{"bytes long", bytes.Repeat([]byte{0xAB}, 1000), bytes.Repeat([]byte{0xAB}, 1000)},
	{"time utc", utc, utc},
	{"time zoned", utc.In(east), utc},
	{"time nanos dropped", utc.Add(999 * time.Millisecond), utc},
	{"empty struct", map[string]any{}, map[string]any{}},
	{"empty array", []any{}, []any{}},
	{"nil slice", []any(nil), []any{}},
	{"[]string", []string{"a", "b"}, []any{"a", "b"}},
	{"map[string]int", map[string]int{"x": 1}, map[string]any{"x": int64(1)}},
	{"pointer", new(int), int64(0)},
	{"nil pointer", (*int)(nil), nil},
	{"struct names", map[string]any{"": 1, "a&b<c>\r": 2, " sp ": 3, "😀": 4},
		map[string]any{"": int64(1), "a&b<c>\r": int64(2), " sp ": int64(3), "😀": int64(4)}},
	{"nested", map[string]any{
		"list": []any{1, "two", []any{3.5, nil, map[string]any{"deep": []byte("x")}}},
		"ok":   true,
		"when": utc,
		"none": nil,
		"rows": []map[string]any{{"k": "v"}},
	}, map[string]any{
		"list": []any{int64(1), "two", []any{3.5, nil, map[string]any{"deep": []byte("x")}}},
		"ok":   true,
		"when": utc,
		"none": nil,
		"rows": []any{map[string]any{"k": "v"}},
	}},
}

func init() {
	for _, s := range hardStrings {
		roundTrips = append(roundTrips, struct {
			name     string
			in, want any
		}{"string " + excerpt(s), s, s})
	}
}

func TestRoundTripCall(t *testing.T) {
	for _, tc := range roundTrips {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := EncodeCall(&buf, "echo", tc.in, tc.in); err != nil {
				t.Fatalf("EncodeCall: %v", err)
			}
			lim := DefaultLimits()
			lim.MaxBodyBytes = 1 << 20
			method, params, err := DecodeCall(&buf, lim)
			if err != nil {
				t.Fatalf("DecodeCall: %v", err)
			}
			if method != "echo" {
				t.Errorf("method = %q, want echo", method)
			}
			want := []any{tc.want, tc.want}
			if !reflect.DeepEqual(params, want) {
				t.Errorf("params = %#v\nwant %#v", params, want)
			}
		})
	}
}

func TestRoundTripResponse(t *testing.T) {
	for _, tc := range roundTrips {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := EncodeResponse(&buf, tc.in); err != nil {
				t.Fatalf("EncodeResponse: %v", err)
			}
			got, err := DecodeResponse(&buf, Limits{})
			if err != nil {
				t.Fatalf("DecodeResponse: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestIntWidthOnTheWire(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{math.MaxInt32, "<int>2147483647</int>"},
		{math.MinInt32, "<int>-2147483648</int>"},
		{math.MaxInt32 + 1, "<i8>2147483648</i8>"},
		{math.MinInt32 - 1, "<i8>-2147483649</i8>"},
	} {
		var buf bytes.Buffer
		if err := EncodeResponse(&buf, tc.n); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), tc.want) {
			t.Errorf("%d encoded as %s, want %s", tc.n, buf.String(), tc.want)
		}
	}
}

func TestEncodeCRAsCharRef(t *testing.T) {
	var buf bytes.Buffer
	if err := EncodeResponse(&buf, "a\r\n]]>"); err != nil {
		t.Fatal(err)
	}
	if want := "<string>a&#xD;\n]]&gt;</string>"; !strings.Contains(buf.String(), want) {
		t.Errorf("got %s, want it to contain %s", buf.String(), want)
	}
}

func TestFaultRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := EncodeFault(&buf, Faultf(Conflict, "key %q is locked", "k<&>")); err != nil {
		t.Fatal(err)
	}
	_, err := DecodeResponse(&buf, Limits{})
	var f *Fault
	if !errors.As(err, &f) || f.Code != Conflict || f.Message != `key "k<&>" is locked` {
		t.Fatalf("got %v, want fault %d", err, Conflict)
	}
	if got := f.Error(); got != `fault 2: key "k<&>" is locked` {
		t.Errorf("Error() = %q", got)
	}
}

func TestEncodeFaultSanitisesMessage(t *testing.T) {
	var buf bytes.Buffer
	if err := EncodeFault(&buf, &Fault{Code: InternalError, Message: "bad\x00byte\xff!"}); err != nil {
		t.Fatal(err)
	}
	_, err := DecodeResponse(&buf, Limits{})
	var f *Fault
	if !errors.As(err, &f) || f.Message != "bad\ufffdbyte\ufffd!" {
		t.Fatalf("got %v, want the message with U+FFFD", err)
	}
}

func TestEncodeErrors(t *testing.T) {
	self := map[string]any{}
	self["me"] = self
	for _, tc := range []struct {
		name string
		v    any
	}{
		{"NaN", math.NaN()},
		{"+Inf", math.Inf(1)},
		{"-Inf float32", float32(math.Inf(-1))},
		{"U+0000", "a\x00b"},
		{"U+001F", "\x1f"},
		{"U+FFFE", "\ufffe"},
		{"invalid UTF-8", "a\xffb"},
		{"lone surrogate bytes", "\xed\xa0\x80"},
		{"bad member name", map[string]any{"\x00": 1}},
		{"bad nested value", []any{1, []any{"\x01"}}},
		{"int keys", map[int]string{1: "a"}},
		{"Go struct", struct{ A int }{1}},
		{"uint64 above int64", uint64(math.MaxUint64)},
		{"year 10000", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"year -1", time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"channel", make(chan int)},
		{"func", func() {}},
		{"self-containing map", self},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := EncodeResponse(&buf, tc.v); err == nil {
				t.Fatalf("EncodeResponse(%v) succeeded: %s", tc.name, buf.String())
			}
			if buf.Len() != 0 {
				t.Errorf("a failed encode wrote %d bytes", buf.Len())
			}
			if err := EncodeCall(&buf, "m", "ok", tc.v); err == nil || buf.Len() != 0 {
				t.Errorf("EncodeCall: err=%v, wrote %d bytes", err, buf.Len())
			}
		})
	}
}

func TestEncodeCallRefusesBadMethodName(t *testing.T) {
	for _, name := range []string{"", "a b", "a<b", "é"} {
		if err := EncodeCall(new(bytes.Buffer), name); err == nil {
			t.Errorf("EncodeCall(%q) succeeded", name)
		}
	}
}

// A call encoded by kolo, the project's client library, decodes to the
// values it meant.
func TestDecodeKoloCall(t *testing.T) {
	type tagged struct {
		Key   string `xmlrpc:"key"`
		Count int    `xmlrpc:"count"`
	}
	body, err := xmlrpc.EncodeMethodCall("participant.prepare",
		"str <&> \r\n ]]>",
		42,
		true,
		1.25,
		xmlrpc.Base64(base64.StdEncoding.EncodeToString([]byte{0, 1, 0xfe})),
		utc,
		map[string]any{"a": 1, "b": []any{"x", false}},
		[]string{"p", "q"},
		tagged{Key: "k", Count: 3},
		(*string)(nil), // kolo quirk: a nil pointer is an empty <value/>
	)
	if err != nil {
		t.Fatal(err)
	}
	method, params, err := DecodeCall(bytes.NewReader(body), DefaultLimits())
	if err != nil {
		t.Fatalf("DecodeCall(%s): %v", body, err)
	}
	want := []any{
		"str <&> \r\n ]]>",
		int64(42),
		true,
		1.25,
		[]byte{0, 1, 0xfe},
		utc,
		map[string]any{"a": int64(1), "b": []any{"x", false}},
		[]any{"p", "q"},
		map[string]any{"key": "k", "count": int64(3)},
		"",
	}
	if method != "participant.prepare" || !reflect.DeepEqual(params, want) {
		t.Errorf("got %s %#v\nwant %#v", method, params, want)
	}
}

// A response we encode is read correctly by kolo.
func TestKoloDecodesOurResponse(t *testing.T) {
	check := func(v, into any) {
		t.Helper()
		var buf bytes.Buffer
		if err := EncodeResponse(&buf, v); err != nil {
			t.Fatal(err)
		}
		if err := xmlrpc.Response(buf.Bytes()).Unmarshal(into); err != nil {
			t.Fatalf("kolo Unmarshal(%s): %v", buf.String(), err)
		}
	}
	for _, s := range hardStrings {
		if s == "" || strings.TrimSpace(s) == "" {
			continue // kolo reads an empty <string></string> as nothing at all
		}
		var got string
		check(s, &got)
		if got != s {
			t.Errorf("kolo read %q, want %q", excerpt(got), excerpt(s))
		}
	}

	var n int64
	check(int64(math.MaxInt64), &n)
	if n != math.MaxInt64 {
		t.Errorf("i8: kolo read %d", n)
	}

	var when time.Time
	check(utc.In(east), &when)
	if !when.Equal(utc) {
		t.Errorf("time: kolo read %v, want %v", when, utc)
	}

	var st struct {
		Name  string  `xmlrpc:"name"`
		Count int     `xmlrpc:"count"`
		Ratio float64 `xmlrpc:"ratio"`
		OK    bool    `xmlrpc:"ok"`
		Tags  []any   `xmlrpc:"tags"`
	}
	check(map[string]any{"name": "n&", "count": 7, "ratio": 0.5, "ok": true, "tags": []string{"a", "b"}}, &st)
	if st.Name != "n&" || st.Count != 7 || st.Ratio != 0.5 || !st.OK || !reflect.DeepEqual(st.Tags, []any{"a", "b"}) {
		t.Errorf("struct: kolo read %+v", st)
	}

	// kolo has no base64 type on the way in: it gives the base64 text.
	var b64 string
	check([]byte("hi"), &b64)
	if b64 != base64.StdEncoding.EncodeToString([]byte("hi")) {
		t.Errorf("base64: kolo read %q", b64)
	}

	var buf bytes.Buffer
	if err := EncodeFault(&buf, Faultf(NotFound, "no key")); err != nil {
		t.Fatal(err)
	}
	var fe xmlrpc.FaultError
	if err := xmlrpc.Response(buf.Bytes()).Err(); !errors.As(err, &fe) || fe.Code != NotFound || fe.String != "no key" {
		t.Errorf("fault: kolo read %v", err)
	}
}
