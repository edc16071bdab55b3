package rpc

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// parseScalar turns the text of a scalar element into its Go value. The
// error says what was wrong with the text; the caller makes it a ParseError.
func parseScalar(typ, s string) (any, error) {
	switch typ {
	case "string":
		return s, nil // kept exactly: whitespace is data
	case "int", "i4":
		return parseInt(typ, s, 32)
	case "i8":
		return parseInt(typ, s, 64)
	case "boolean":
		switch strings.TrimSpace(s) {
		case "0":
			return false, nil
		case "1":
			return true, nil
		}
		return nil, fmt.Errorf("<boolean> %s: want 0 or 1", excerpt(s))
	case "double":
		return parseDouble(s)
	case "base64":
		return parseBase64(s)
	case "dateTime.iso8601":
		return parseDateTime(s)
	case "nil":
		if strings.TrimSpace(s) != "" {
			return nil, fmt.Errorf("<nil> must be empty")
		}
		return nil, nil
	}
	// Unreachable: the caller only passes the types above.
	return nil, fmt.Errorf("unknown type <%s>", clip(typ, maxQuoted))
}

// parseInt parses a decimal integer that must fit in bits. Surrounding
// whitespace is allowed, as Python's int() allows it.
func parseInt(typ, s string, bits int) (int64, error) {
	t := strings.TrimSpace(s)
	n, err := strconv.ParseInt(t, 10, bits)
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("<%s> %s does not fit in %d bits", typ, excerpt(t), bits)
	}
	if err != nil {
		return 0, fmt.Errorf("<%s> %s is not an integer", typ, excerpt(s))
	}
	return n, nil
}

// parseDouble accepts decimal notation with an optional exponent (Python
// sends repr(), e.g. 1e+100). Hex floats, NaN and infinities are refused:
// XML-RPC has no spelling for them and we could not send them back.
func parseDouble(s string) (float64, error) {
	t := strings.TrimSpace(s)
	if t == "" || strings.Trim(t, "0123456789+-.eE") != "" {
		return 0, fmt.Errorf("<double> %s is not a decimal number", excerpt(s))
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, fmt.Errorf("<double> %s is not a finite decimal number", excerpt(s))
	}
	return f, nil
}

// parseBase64 decodes standard base64, ignoring the whitespace and line
// breaks that Python's encodebytes puts every 76 characters. The result is
// never nil, so an empty <base64/> is an empty []byte.
func parseBase64(s string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s)
	b, err := base64.StdEncoding.DecodeString(clean)
	if err != nil {
		return nil, fmt.Errorf("<base64>: %v", err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// dateTimeLayouts are the spellings of dateTime.iso8601 seen in the wild:
// the spec's (Python, kolo), with a zone, and the hyphenated ISO 8601 one.
var dateTimeLayouts = []string{
	"20060102T15:04:05",
	"20060102T15:04:05Z07:00",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04:05Z07:00",
}

// parseDateTime parses a dateTime.iso8601. A time without a zone is taken
// as UTC (the spec leaves the zone to the parties; this project uses UTC),
// and a time with one is converted to UTC, so that every decoded time is in
// UTC whatever the machine's local zone, and encodes back to the same text.
func parseDateTime(s string) (time.Time, error) {
	t := strings.TrimSpace(s)
	// time.Parse accepts fractional seconds the layouts do not mention;
	// we could not send them back, so refuse them.
	if !strings.ContainsAny(t, ".,") {
		for _, layout := range dateTimeLayouts {
			v, err := time.Parse(layout, t)
			if err != nil {
				continue
			}
			// A zone can push the UTC year out of the four digits we
			// could send back (00000101T00:00:00+01:00).
			if err := checkYear(v); err != nil {
				return time.Time{}, fmt.Errorf("<dateTime.iso8601> %s: year outside 0000-9999 in UTC", excerpt(s))
			}
			return v.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("<dateTime.iso8601> %s: want YYYYMMDDTHH:MM:SS, optionally with Z or +hh:mm", excerpt(s))
}
