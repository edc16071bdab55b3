package txlog

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/twopc/twopc/protocol"
)

// Format is the format this code writes: the number in the "format" line
// at the head of every file it writes (doc.go). It reads formats 1
// (files without a format line) to 4.
const Format = 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const (
	crcLen    = 8
	headerLen = crcLen + 1 // "<crc> "
)

// check reports why r cannot be written so that it parses back to itself,
// or nil. It is the writer's half of the canonical-encoding rule.
func check(r protocol.Record) error {
	noTx := r.TxID == "" && len(r.Participants) == 0 && len(r.Keys) == 0
	if r.URL != "" && r.Kind != protocol.KindJoin {
		return fmt.Errorf("%s record with a URL", r.Kind)
	}
	switch r.Kind {
	case protocol.KindFormat:
		if !noTx || r.Epoch != 0 {
			return errors.New("format record with other fields")
		}
		if r.Format == 0 {
			return errors.New("format 0: formats start at 1")
		}
	case protocol.KindEpoch:
		if !noTx || r.Format != 0 {
			return errors.New("epoch record with other fields")
		}
	case protocol.KindStaged, protocol.KindCommit:
		if r.Epoch != 0 || r.Format != 0 {
			return fmt.Errorf("%s record with an epoch or format", r.Kind)
		}
		if err := checkWord("txid", r.TxID); err != nil {
			return err
		}
		if len(r.Participants) == 0 {
			return fmt.Errorf("%s %s has no participants", r.Kind, r.TxID)
		}
		for _, p := range r.Participants {
			if err := checkWord("participant", p); err != nil {
				return err
			}
			if strings.IndexByte(p, ',') >= 0 {
				return fmt.Errorf("participant %q contains a comma", p)
			}
		}
		if len(r.Keys) == 0 {
			return fmt.Errorf("%s %s has no keys", r.Kind, r.TxID)
		}
		for i := 1; i < len(r.Keys); i++ {
			if r.Keys[i-1] >= r.Keys[i] { // sorted, and none repeated
				return fmt.Errorf("%s %s: keys not sorted or repeated", r.Kind, r.TxID)
			}
		}
	case protocol.KindAbort, protocol.KindEnd:
		if r.Epoch != 0 || r.Format != 0 || len(r.Participants) != 0 || len(r.Keys) != 0 {
			return fmt.Errorf("%s record with other fields", r.Kind)
		}
		if err := checkWord("txid", r.TxID); err != nil {
			return err
		}
	case protocol.KindExclude, protocol.KindInclude, protocol.KindJoin, protocol.KindRemove:
		if r.Epoch != 0 || r.Format != 0 || r.TxID != "" || len(r.Keys) != 0 || len(r.Participants) != 1 {
			return fmt.Errorf("%s record needs one participant and nothing else", r.Kind)
		}
		if r.Kind == protocol.KindJoin {
			if err := checkWord("URL", r.URL); err != nil {
				return err
			}
		}
		if err := checkWord("participant", r.Participants[0]); err != nil {
			return err
		}
		if strings.IndexByte(r.Participants[0], ',') >= 0 {
			return fmt.Errorf("participant %q contains a comma", r.Participants[0])
		}
	default:
		return fmt.Errorf("unknown kind %q", r.Kind)
	}
	return nil
}

// checkWord accepts non-empty valid UTF-8 without spaces or control
// characters. It uses no Unicode tables that change between Go releases
// except White_Space, which is stable.
func checkWord(what, s string) error {
	if s == "" {
		return fmt.Errorf("empty %s", what)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s %q is not valid UTF-8", what, s)
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || (r >= 0x80 && r <= 0x9f) || unicode.IsSpace(r) {
			return fmt.Errorf("%s %q contains a space or control character", what, s)
		}
	}
	return nil
}

// appendBody appends the part of r's line that the CRC covers.
func appendBody(dst []byte, r protocol.Record) []byte {
	dst = append(dst, r.Kind...)
	dst = append(dst, ' ')
	switch r.Kind {
	case protocol.KindFormat:
		dst = strconv.AppendUint(dst, r.Format, 10)
	case protocol.KindEpoch:
		dst = strconv.AppendUint(dst, r.Epoch, 10)
	case protocol.KindStaged, protocol.KindCommit:
		dst = append(dst, r.TxID...)
		dst = append(dst, ' ')
		for i, p := range r.Participants {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, p...)
		}
		for _, k := range r.Keys {
			dst = append(dst, ' ')
			dst = strconv.AppendQuote(dst, k)
		}
	case protocol.KindAbort, protocol.KindEnd:
		dst = append(dst, r.TxID...)
	case protocol.KindExclude, protocol.KindInclude, protocol.KindRemove:
		dst = append(dst, r.Participants[0]...)
	case protocol.KindJoin:
		dst = append(dst, r.Participants[0]...)
		dst = append(dst, ' ')
		dst = append(dst, r.URL...)
	}
	return dst
}

// appendLine appends r's whole line, newline included. r must be valid.
func appendLine(dst []byte, r protocol.Record) []byte {
	start := len(dst)
	dst = append(dst, "00000000 "...)
	dst = appendBody(dst, r)
	putCRC(dst[start:], dst[start+headerLen:])
	return append(dst, '\n')
}

// putCRC writes body's checksum as 8 hex digits at the start of line.
func putCRC(line, body []byte) {
	sum := crc32.Checksum(body, castagnoli)
	const hex = "0123456789abcdef"
	for i := crcLen - 1; i >= 0; i-- {
		line[i] = hex[sum&0xf]
		sum >>= 4
	}
}

// errFrame marks a line whose framing (crc field, checksum) is bad: the
// signature of a torn write. Other parse errors mean a whole line was
// written with content we do not accept.
var errFrame = errors.New("bad framing")

// checkFrame verifies the "<crc> " header and the checksum of line (without
// its newline) and returns the body.
func checkFrame(line []byte) ([]byte, error) {
	if len(line) < headerLen || line[crcLen] != ' ' {
		return nil, fmt.Errorf("%w: no checksum field", errFrame)
	}
	var want uint32
	for _, c := range line[:crcLen] {
		switch {
		case c >= '0' && c <= '9':
			want = want<<4 | uint32(c-'0')
		case c >= 'a' && c <= 'f':
			want = want<<4 | uint32(c-'a'+10)
		default:
			return nil, fmt.Errorf("%w: checksum field is not 8 lowercase hex digits", errFrame)
		}
	}
	body := line[headerLen:]
	if got := crc32.Checksum(body, castagnoli); got != want {
		return nil, fmt.Errorf("%w: checksum mismatch (stored %08x, computed %08x)", errFrame, want, got)
	}
	return body, nil
}

// parseBody decodes a checksummed body. It accepts only the canonical
// encoding: the result re-encodes to exactly body.
func parseBody(body []byte) (protocol.Record, error) {
	kind, rest, _ := bytes.Cut(body, []byte{' '})
	var r protocol.Record
	switch k := protocol.Kind(kind); k {
	case protocol.KindFormat, protocol.KindEpoch:
		n, err := strconv.ParseUint(string(rest), 10, 64)
		if err != nil {
			return protocol.Record{}, fmt.Errorf("%s %q is not a decimal uint64", kind, rest)
		}
		r = protocol.Record{Kind: k, Epoch: n}
		if k == protocol.KindFormat {
			r = protocol.Record{Kind: k, Format: n}
		}
	case protocol.KindStaged, protocol.KindCommit:
		f := strings.SplitN(string(rest), " ", 3)
		if len(f) != 3 {
			return protocol.Record{}, fmt.Errorf("%s needs txid, participants and keys", kind)
		}
		keys, err := parseKeys(f[2])
		if err != nil {
			return protocol.Record{}, fmt.Errorf("%s %s: %v", kind, f[0], err)
		}
		r = protocol.Record{Kind: k, TxID: f[0], Participants: strings.Split(f[1], ","), Keys: keys}
	case protocol.KindAbort, protocol.KindEnd:
		r = protocol.Record{Kind: k, TxID: string(rest)}
	case protocol.KindExclude, protocol.KindInclude, protocol.KindRemove:
		r = protocol.Record{Kind: k, Participants: []string{string(rest)}}
	case protocol.KindJoin:
		name, url, _ := bytes.Cut(rest, []byte{' '})
		r = protocol.Record{Kind: k, Participants: []string{string(name)}, URL: string(url)}
	default:
		return protocol.Record{}, fmt.Errorf("unknown kind %q", kind)
	}
	if err := check(r); err != nil {
		return protocol.Record{}, err
	}
	if !bytes.Equal(appendBody(nil, r), body) {
		return protocol.Record{}, errors.New("not in canonical encoding")
	}
	return r, nil
}

// parseKeys reads quoted keys separated by single spaces.
func parseKeys(s string) ([]string, error) {
	var keys []string
	for {
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return nil, fmt.Errorf("keys %.40q are not quoted strings", s)
		}
		k, _ := strconv.Unquote(q)
		keys = append(keys, k)
		s = s[len(q):]
		if s == "" {
			return keys, nil
		}
		if s[0] != ' ' {
			return nil, fmt.Errorf("keys %.40q: want a space between keys", s)
		}
		s = s[1:]
	}
}

// parseLine decodes one line without its newline.
func parseLine(line []byte) (protocol.Record, error) {
	body, err := checkFrame(line)
	if err != nil {
		return protocol.Record{}, err
	}
	return parseBody(body)
}
