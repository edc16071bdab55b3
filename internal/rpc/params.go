package rpc

import (
	"fmt"
	"strings"
	"time"
)

// The helpers below check a handler's params. Each failure is an
// InvalidParams fault naming the param's position (1-based, as a human
// counts), its name, and the expected and received XML-RPC types, e.g.
// `param 2 (value): want string or base64, got int`.

// Arity checks that there are exactly len(names) params.
func Arity(params []any, names ...string) error {
	if len(params) != len(names) {
		if len(names) == 0 {
			return Faultf(InvalidParams, "want no params, got %d", len(params))
		}
		return Faultf(InvalidParams, "want %d params (%s), got %d", len(names), strings.Join(names, ", "), len(params))
	}
	return nil
}

// Strings checks that there are exactly len(names) params, all strings,
// and returns them: the usual shape of a method of names and URLs.
func Strings(params []any, names ...string) ([]string, error) {
	if err := Arity(params, names...); err != nil {
		return nil, err
	}
	out := make([]string, len(names))
	for i, name := range names {
		s, err := String(params, i, name)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// String returns param i, which must be a string.
func String(params []any, i int, name string) (string, error) {
	v, err := param(params, i, name)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", mistyped(i, name, "string", v)
	}
	return s, nil
}

// Int returns param i, which must be an int, i4 or i8.
func Int(params []any, i int, name string) (int64, error) {
	v, err := param(params, i, name)
	if err != nil {
		return 0, err
	}
	switch n := v.(type) {
	case int64:
		return n, nil
	case int: // a Go caller of the handler, not the wire
		return int64(n), nil
	}
	return 0, mistyped(i, name, "int", v)
}

// Bool returns param i, which must be a boolean.
func Bool(params []any, i int, name string) (bool, error) {
	v, err := param(params, i, name)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, mistyped(i, name, "boolean", v)
	}
	return b, nil
}

// Struct returns param i, which must be a struct.
func Struct(params []any, i int, name string) (map[string]any, error) {
	v, err := param(params, i, name)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, mistyped(i, name, "struct", v)
	}
	return m, nil
}

// StringOrBytes returns param i, which must be a string or a base64. binary
// says which, so that a value can be given back in the type it came in.
func StringOrBytes(params []any, i int, name string) (v []byte, binary bool, err error) {
	p, err := param(params, i, name)
	if err != nil {
		return nil, false, err
	}
	switch p := p.(type) {
	case string:
		return []byte(p), false, nil
	case []byte:
		return p, true, nil
	}
	return nil, false, mistyped(i, name, "string or base64", p)
}

func param(params []any, i int, name string) (any, error) {
	if i < 0 || i >= len(params) {
		return nil, Faultf(InvalidParams, "missing param %d (%s)", i+1, name)
	}
	return params[i], nil
}

func mistyped(i int, name, want string, got any) *Fault {
	return Faultf(InvalidParams, "param %d (%s): want %s, got %s", i+1, name, want, TypeName(got))
}

// TypeName names the XML-RPC type of a decoded value, for messages.
func TypeName(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	case string:
		return "string"
	case int64, int:
		return "int"
	case bool:
		return "boolean"
	case float64:
		return "double"
	case []byte:
		return "base64"
	case time.Time:
		return "dateTime.iso8601"
	case map[string]any:
		return "struct"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}
