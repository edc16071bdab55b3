package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
)

// The inventory is read strictly, and every problem found is reported at
// once with its place: a syntax error with its line and column; a
// misspelt or unknown field (which would otherwise silently become a
// default) with its line, column, host and the field it probably meant;
// a value of the wrong type with its line, column, host and field.

// decodeInventory decodes data. Errors name where each problem is; a
// syntax error stops the reading (nothing after it can be trusted).
func decodeInventory(data []byte) (*Inventory, []error) {
	var tree any
	if err := json.Unmarshal(data, &tree); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, []error{errAt(data, se.Offset-1, "not valid JSON: %v", err)} // Offset is past the bad byte
		}
		return nil, []error{fmt.Errorf("not valid JSON: %v", err)}
	}
	if _, ok := tree.(map[string]any); !ok {
		return nil, []error{errors.New("not valid JSON for an inventory: want an object {...} at the top")}
	}
	keys, starts := objectKeys(data)
	var errs []error
	for _, k := range keys {
		where, known := "", jsonFields(reflect.TypeFor[Inventory]())
		switch {
		case k.path == "defaults":
			where, known = "defaults: ", jsonFields(reflect.TypeFor[Host]())
		case strings.HasPrefix(k.path, "hosts["):
			var i int
			fmt.Sscanf(k.path, "hosts[%d]", &i)
			where, known = hostLabel(tree, i)+": ", jsonFields(reflect.TypeFor[Host]())
		case k.path != "":
			continue // inside a value, e.g. roles: not a field
		}
		if !slices.Contains(known, k.key) {
			errs = append(errs, errAt(data, k.off, "%sunknown field %q%s", where, k.key, suggest(k.key, known)))
		}
	}
	// Hosts one by one, so that a wrong type in one host does not hide
	// another's; everything else in one go.
	var top struct {
		Inventory
		Hosts []json.RawMessage `json:"hosts"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		errs = append(errs, typeError(data, 0, "", err))
	}
	inv := top.Inventory
	for i, raw := range top.Hosts {
		var h Host
		if err := json.Unmarshal(raw, &h); err != nil {
			errs = append(errs, typeError(data, starts[fmt.Sprintf("hosts[%d]", i)], hostLabel(tree, i)+": ", err))
		}
		inv.Hosts = append(inv.Hosts, h)
	}
	return &inv, errs
}

// typeError places a decoding error: base is where the decoded value
// starts in data.
func typeError(data []byte, base int64, where string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return errAt(data, base+te.Offset, "%s%s: want %s, found a JSON %s", where, te.Field, te.Type, te.Value)
	}
	return fmt.Errorf("%s%v", where, err)
}

// errAt is an error at a byte offset of data, given as line and column.
func errAt(data []byte, off int64, format string, args ...any) error {
	off = min(max(off, 0), int64(len(data)))
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := int(off) - bytes.LastIndexByte(data[:off], '\n')
	return fmt.Errorf("line %d, column %d: %s", line, col, fmt.Sprintf(format, args...))
}

// hostLabel names hosts[i] as the operator knows it: by its name, if it
// has one.
func hostLabel(tree any, i int) string {
	if hosts, ok := tree.(map[string]any)["hosts"].([]any); ok && i < len(hosts) {
		if h, ok := hosts[i].(map[string]any); ok {
			if name, ok := h["name"].(string); ok && name != "" {
				return fmt.Sprintf("host %q", name)
			}
		}
	}
	return fmt.Sprintf("hosts[%d] (no name)", i)
}

// jsonKey is an object key in a JSON document: the path of the object it
// is in ("" at the top, "defaults", "hosts[1]"), and where it starts.
type jsonKey struct {
	path, key string
	off       int64
}

// objectKeys lists every key of every object in data (which is valid
// JSON), and where each object starts, by path.
func objectKeys(data []byte) ([]jsonKey, map[string]int64) {
	type frame struct {
		path   string
		object bool
		key    string // the object's key whose value comes next
		index  int    // the array's next index
	}
	var keys []jsonKey
	starts := map[string]int64{}
	stack := []*frame{{}}
	dec := json.NewDecoder(bytes.NewReader(data))
	childPath := func(f *frame) string {
		if f.object {
			return strings.TrimPrefix(f.path+"."+f.key, ".")
		}
		return fmt.Sprintf("%s[%d]", f.path, f.index)
	}
	// valueDone moves the enclosing container past the value just read.
	valueDone := func() {
		if f := stack[len(stack)-1]; f.object {
			f.key = ""
		} else {
			f.index++
		}
	}
	for {
		before := dec.InputOffset()
		tok, err := dec.Token()
		if err == io.EOF || err != nil {
			return keys, starts
		}
		top := stack[len(stack)-1]
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				path := ""
				if len(stack) > 1 {
					path = childPath(top)
				}
				// The delimiter is the first non-space byte after before.
				starts[path] = before + int64(len(data[before:])-len(bytes.TrimLeft(data[before:], " \t\r\n,:")))
				stack = append(stack, &frame{path: path, object: t == '{'})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
		case string:
			if top.object && top.key == "" {
				top.key = t
				keys = append(keys, jsonKey{path: top.path, key: t, off: dec.InputOffset() - int64(len(t)) - 2})
				continue
			}
			valueDone()
		default:
			valueDone()
		}
	}
}

// jsonFields are the JSON names of a struct's fields.
func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// suggest names the known field closest to a misspelt one, if any is
// close: one or two letters off, or the same but for case.
func suggest(field string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := distance(strings.ToLower(field), k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
