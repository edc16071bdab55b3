package rpc

import (
	"reflect"
	"testing"
	"time"
)

func TestParamHelpers(t *testing.T) {
	p := []any{"k", int64(7), true, map[string]any{"a": "b"}, []byte("v"), 1.5, time.Time{}, nil, []any{}}

	if s, err := String(p, 0, "key"); err != nil || s != "k" {
		t.Errorf("String = %q, %v", s, err)
	}
	if n, err := Int(p, 1, "n"); err != nil || n != 7 {
		t.Errorf("Int = %d, %v", n, err)
	}
	if b, err := Bool(p, 2, "flag"); err != nil || !b {
		t.Errorf("Bool = %v, %v", b, err)
	}
	if m, err := Struct(p, 3, "opts"); err != nil || !reflect.DeepEqual(m, map[string]any{"a": "b"}) {
		t.Errorf("Struct = %v, %v", m, err)
	}
	if ss, err := Strings([]any{"c4", "http://h/RPC2"}, "name", "url"); err != nil || !reflect.DeepEqual(ss, []string{"c4", "http://h/RPC2"}) {
		t.Errorf("Strings = %q, %v", ss, err)
	}
	if v, bin, err := StringOrBytes(p, 0, "value"); err != nil || string(v) != "k" || bin {
		t.Errorf("StringOrBytes(string) = %q, %v, %v", v, bin, err)
	}
	if v, bin, err := StringOrBytes(p, 4, "value"); err != nil || string(v) != "v" || !bin {
		t.Errorf("StringOrBytes(base64) = %q, %v, %v", v, bin, err)
	}

	for _, tc := range []struct {
		name string
		err  error
		msg  string
	}{
		{"arity", Arity(p[:1], "key", "value"), "want 2 params (key, value), got 1"},
		{"arity none", Arity(p[:1]), "want no params, got 1"},
		{"missing", second(String(p[:1], 1, "value")), "missing param 2 (value)"},
		{"strings arity", second(Strings(p[:1], "name", "url")), "want 2 params (name, url), got 1"},
		{"strings type", second(Strings(p[:2], "name", "url")), "param 2 (url): want string, got int"},
		{"negative index", second(String(p, -1, "x")), "missing param 0 (x)"},
		{"string", second(String(p, 1, "key")), "param 2 (key): want string, got int"},
		{"int", second(Int(p, 5, "n")), "param 6 (n): want int, got double"},
		{"bool", second(Bool(p, 0, "flag")), "param 1 (flag): want boolean, got string"},
		{"struct", second(Struct(p, 8, "opts")), "param 9 (opts): want struct, got array"},
		{"string or bytes", third(StringOrBytes(p, 6, "value")), "param 7 (value): want string or base64, got dateTime.iso8601"},
		{"nil", third(StringOrBytes(p, 7, "value")), "param 8 (value): want string or base64, got nil"},
	} {
		f, ok := asFault(tc.err)
		if !ok || f.Code != InvalidParams || f.Message != tc.msg {
			t.Errorf("%s: got %v, want InvalidParams %q", tc.name, tc.err, tc.msg)
		}
	}
	if err := Arity(p[:2], "key", "value"); err != nil {
		t.Errorf("Arity of the right count: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

func third[T, U any](_ T, _ U, err error) error { return err }
