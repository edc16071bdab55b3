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
)

// Kind is the type of a log record; it is the second word of its line.
type Kind string

const (
	KindEpoch  Kind = "epoch"  // a coordinator incarnation started: Epoch
	KindStaged Kind = "staged" // prepares are out, outcome open: TxID, Participants, Key
	KindCommit Kind = "commit" // commit was decided: TxID, Participants, Key
	KindAbort  Kind = "abort"  // abort of a staged transaction was decided: TxID
	KindEnd    Kind = "end"    // every participant acknowledged: TxID
)

// Record is one line of the log. Only the fields of its Kind may be set.
type Record struct {
	Kind         Kind
	Epoch        uint64   // KindEpoch
	TxID         string   // every kind but KindEpoch
	Participants []string // KindStaged and KindCommit, at least one
	Key          string   // KindStaged and KindCommit, for operators only; any bytes
}

func (r Record) String() string {
	return string(appendBody(nil, r))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const (
	crcLen    = 8
	headerLen = crcLen + 1 // "<crc> "
)

// check reports why r cannot be written so that it parses back to itself,
// or nil. It is the writer's half of the canonical-encoding rule.
func (r Record) check() error {
	switch r.Kind {
	case KindEpoch:
		if r.TxID != "" || len(r.Participants) != 0 || r.Key != "" {
			return errors.New("epoch record with commit fields")
		}
	case KindStaged, KindCommit:
		if r.Epoch != 0 {
			return fmt.Errorf("%s record with an epoch", r.Kind)
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
	case KindAbort, KindEnd:
		if r.Epoch != 0 || len(r.Participants) != 0 || r.Key != "" {
			return fmt.Errorf("%s record with epoch or commit fields", r.Kind)
		}
		if err := checkWord("txid", r.TxID); err != nil {
			return err
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
func appendBody(dst []byte, r Record) []byte {
	dst = append(dst, r.Kind...)
	dst = append(dst, ' ')
	switch r.Kind {
	case KindEpoch:
		dst = strconv.AppendUint(dst, r.Epoch, 10)
	case KindStaged, KindCommit:
		dst = append(dst, r.TxID...)
		dst = append(dst, ' ')
		for i, p := range r.Participants {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, p...)
		}
		dst = append(dst, ' ')
		dst = strconv.AppendQuote(dst, r.Key)
	case KindAbort, KindEnd:
		dst = append(dst, r.TxID...)
	}
	return dst
}

// appendLine appends r's whole line, newline included. r must be valid.
func appendLine(dst []byte, r Record) []byte {
	start := len(dst)
	dst = append(dst, "00000000 "...)
	dst = appendBody(dst, r)
	sum := crc32.Checksum(dst[start+headerLen:], castagnoli)
	const hex = "0123456789abcdef"
	for i := crcLen - 1; i >= 0; i-- {
		dst[start+i] = hex[sum&0xf]
		sum >>= 4
	}
	return append(dst, '\n')
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
func parseBody(body []byte) (Record, error) {
	kind, rest, _ := bytes.Cut(body, []byte{' '})
	var r Record
	switch Kind(kind) {
	case KindEpoch:
		n, err := strconv.ParseUint(string(rest), 10, 64)
		if err != nil {
			return Record{}, fmt.Errorf("epoch %q is not a decimal uint64", rest)
		}
		r = Record{Kind: KindEpoch, Epoch: n}
	case KindStaged, KindCommit:
		f := strings.SplitN(string(rest), " ", 3)
		if len(f) != 3 {
			return Record{}, fmt.Errorf("%s needs txid, participants and key", kind)
		}
		key, err := strconv.Unquote(f[2])
		if err != nil {
			return Record{}, fmt.Errorf("%s key %s is not a quoted string", kind, f[2])
		}
		r = Record{Kind: Kind(kind), TxID: f[0], Participants: strings.Split(f[1], ","), Key: key}
	case KindAbort, KindEnd:
		r = Record{Kind: Kind(kind), TxID: string(rest)}
	default:
		return Record{}, fmt.Errorf("unknown kind %q", kind)
	}
	if err := r.check(); err != nil {
		return Record{}, err
	}
	if !bytes.Equal(appendBody(nil, r), body) {
		return Record{}, errors.New("not in canonical encoding")
	}
	return r, nil
}

// parseLine decodes one line without its newline.
func parseLine(line []byte) (Record, error) {
	body, err := checkFrame(line)
	if err != nil {
		return Record{}, err
	}
	return parseBody(body)
}
