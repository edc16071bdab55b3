package rpc

import (
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
)

// parseFastInt reads exactly the numbers fastInt reads, to the same
// values; it may give up on more (the caller then decodes again).
func TestParseFastIntAsFastInt(t *testing.T) {
	texts := []string{"", " ", "0", "-0", "+0", "+", "-", "1", " 7 ", "\t-7\n", "00012", "1_000", "0x10", "1e3", "12a", "٣",
		"2147483647", "2147483648", "-2147483648", "-2147483649",
		"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
		"99999999999999999999", "18446744073709551616", "0000000000000000000001"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		texts = append(texts, strconv.FormatInt(int64(rng.Uint64()), 10), strconv.FormatInt(rng.Int64N(1<<33)-1<<32, 10))
	}
	taken := 0
	for _, s := range texts {
		for _, bits := range []int{32, 64} {
			n, ok := parseFastInt([]byte(s), bits)
			v, want := fastInt([]byte(s), bits)
			switch {
			case ok && !want:
				t.Fatalf("%q (%d bits): read %d, fastInt refuses it", s, bits, n)
			case ok && v != n:
				t.Fatalf("%q (%d bits): read %d, fastInt %v", s, bits, n, v)
			case ok:
				taken++
			}
		}
	}
	if taken < len(texts) {
		t.Fatalf("only %d of %d numbers read", taken, 2*len(texts))
	}
}

// What a ValueWriter writes, a ValueReader reads back, element by element.
func TestValueReaderReadsWhatValueWriterWrites(t *testing.T) {
	var w ValueWriter
	w.OpenArray()
	w.String("s <&>")
	w.Int(-1 << 40)
	w.Int(12)
	w.Bool(true)
	w.OpenArray()
	w.CloseArray()
	w.OpenArray()
	w.Base64([]byte{1, 2})
	w.CloseArray()
	w.CloseArray()
	var got []any
	doc := responseDoc(t, w.Raw())
	read := ReadResponse(doc, DefaultLimits(), func(r *ValueReader) bool {
		if !r.Array() || !r.Next() {
			return false
		}
		s, _ := r.String()
		r.Next()
		big, _ := r.Int()
		r.Next()
		small, _ := r.Int()
		r.Next()
		b, _ := r.Bool()
		r.Next()
		empty := r.Array() && !r.Next() // an empty array ends at once
		r.Next()
		r.Array()
		r.Next()
		v, _ := r.Value()
		got = []any{s, big, small, b, empty, v, r.Next(), r.Next()}
		return !r.Failed()
	})
	want := []any{"s <&>", int64(-1 << 40), int64(12), true, true, []byte{1, 2}, false, false}
	if !read || !reflect.DeepEqual(got, want) {
		t.Fatalf("read %v: %#v, want %#v", read, got, want)
	}
	// Reading it as the wrong shape fails, and stays failed.
	read = ReadResponse(doc, DefaultLimits(), func(r *ValueReader) bool {
		r.Array()
		r.Next()
		_, ok := r.Int()
		return ok || r.Next() || !r.Failed()
	})
	if read {
		t.Fatal("a string was read as an int")
	}
}

func responseDoc(t *testing.T, v any) []byte {
	t.Helper()
	e := getEncoder()
	defer putEncoder(e)
	if err := e.response(v); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), e.buf.Bytes()...)
}
