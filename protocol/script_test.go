package protocol

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected output of testdata/script")

// TestScripts drives one machine per script in testdata/script and
// compares what it asks for with the expected output. A line "> event"
// steps the machine; the lines after it, up to the next event, are the
// Ready it returned, one effect per line. Blank lines and lines starting
// with # are kept as they are. Events:
//
//	start TXID P1,P2,... KEY,...     Start (the first line)
//	recover staged|commit TXID P1,... KEY,...   Recover (the first line)
//	vote P yes|readonly [failed] [result...]  vote YES or read-only; "failed": the
//	                                 failure branch ran; results as put:V, delete:true, get:V
//	vote P no [conflict] REASON      vote NO
//	vote P toolarge REASON           vote NO, the results too large
//	failed P prepare|commit|abort|ask-held [ERR]
//	durable staged|commit|abort
//	asked P
//	acked P commit|abort
//	held P yes|no
//	retry
//	log-failed [ERR]
//
// go test ./protocol -run Scripts -update rewrites the expected output.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/script/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runScript(t, file) })
	}
}

func runScript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var (
		m    *Machine
		out  []string // the script as it runs, expected output replaced
		skip bool     // inside an event's expected output
	)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "> ") {
			if skip && strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "#") {
				continue
			}
			skip = false
			out = append(out, l)
			continue
		}
		out = append(out, l)
		skip = true
		var rd Ready
		func() {
			defer func() {
				if p := recover(); p != nil {
					rd = Ready{}
					out = append(out, fmt.Sprintf("panic: %v", p))
				}
			}()
			var err error
			m, rd, err = scriptStep(m, strings.Fields(l[2:]))
			if err != nil {
				t.Fatalf("%s:%d: %v", file, i+1, err)
			}
		}()
		out = append(out, describe(rd)...)
	}
	got := strings.Join(out, "\n") + "\n"
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got != string(data) {
		t.Errorf("%s: output differs (go test ./protocol -run Scripts -update rewrites it); got:\n%s", file, got)
	}
}

func scriptStep(m *Machine, f []string) (*Machine, Ready, error) {
	arg := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	list := func(s string) []string { return strings.Split(s, ",") }
	switch f[0] {
	case "start":
		m, rd := Start(arg(1), list(arg(2)), list(arg(3)))
		return m, rd, nil
	case "recover":
		var excluded []string // "recover KIND TXID PARTS KEYS excluded P,Q"
		if arg(5) == "excluded" {
			excluded = list(arg(6))
		}
		m, rd := Recover(Record{Kind: Kind(arg(1)), TxID: arg(2), Participants: list(arg(3)), Keys: list(arg(4))}, excluded)
		return m, rd, nil
	}
	if m == nil {
		return nil, Ready{}, fmt.Errorf("%s before start", f[0])
	}
	ev := Event{From: arg(1)}
	msg := func(s string) MsgKind {
		for i, n := range msgNames {
			if n == s {
				return MsgKind(i)
			}
		}
		return -1
	}
	switch f[0] {
	case "vote":
		ev.Kind = EvVote
		v, err := parseVote(f[2:])
		if err != nil {
			return nil, Ready{}, err
		}
		ev.Vote = v
	case "failed":
		ev.Kind, ev.Msg, ev.Err = EvCallFailed, msg(arg(2)), strings.Join(f[min(3, len(f)):], " ")
	case "durable":
		ev.Kind, ev.Record, ev.From = EvDurable, Kind(arg(1)), ""
	case "asked":
		ev.Kind = EvAsked
	case "acked":
		ev.Kind, ev.Msg = EvAcked, msg(arg(2))
	case "held":
		ev.Kind, ev.Held = EvHeld, arg(2) == "yes"
	case "retry":
		ev.Kind = EvRetry
	case "excluded":
		ev.Kind = EvExcluded
	case "log-failed":
		ev.Kind, ev.Err = EvLogFailed, strings.Join(f[1:], " ")
	default:
		return nil, Ready{}, fmt.Errorf("unknown event %q", f[0])
	}
	return m, m.Step(ev), nil
}

func parseVote(f []string) (Vote, error) {
	if len(f) == 0 {
		return Vote{}, fmt.Errorf("vote needs yes, readonly or no")
	}
	switch f[0] {
	case "toolarge":
		return Vote{Kind: VoteNo, TooLarge: true, Reason: strings.Join(f[1:], " ")}, nil
	case "no":
		v := Vote{Kind: VoteNo}
		rest := f[1:]
		if len(rest) > 0 && rest[0] == "conflict" {
			v.Conflict, rest = true, rest[1:]
		}
		v.Reason = strings.Join(rest, " ")
		return v, nil
	case "yes", "readonly":
		v := Vote{Kind: VoteYes, Succeeded: true}
		if f[0] == "readonly" {
			v.Kind = VoteReadOnly
		}
		for _, r := range f[1:] {
			if r == "failed" {
				v.Succeeded = false
				continue
			}
			kind, val, _ := strings.Cut(r, ":")
			switch kind {
			case "put":
				var n int64
				fmt.Sscan(val, &n)
				v.Results = append(v.Results, Result{Kind: OpPut, Version: n})
			case "delete":
				v.Results = append(v.Results, Result{Kind: OpDelete, Existed: val == "true"})
			case "get":
				v.Results = append(v.Results, Result{Kind: OpGet, Found: true, Version: 1, Value: Value{Data: []byte(val)}})
			default:
				return Vote{}, fmt.Errorf("unknown result %q", r)
			}
		}
		return v, nil
	}
	return Vote{}, fmt.Errorf("unknown vote %q", f[0])
}

// describe prints a Ready one effect per line, in the order the driver
// carries them out.
func describe(rd Ready) []string {
	var out []string
	if rd.From != rd.To {
		out = append(out, fmt.Sprintf("state %s -> %s", rd.From, rd.To))
	}
	for _, r := range rd.Records {
		line := "log " + string(r.Kind) + " " + r.TxID
		if len(r.Participants) > 0 {
			line += " " + strings.Join(r.Participants, ",") + " " + strings.Join(r.Keys, ",")
		}
		out = append(out, line)
	}
	switch {
	case rd.Wait:
		out = append(out, "wait until durable")
	case rd.Lazy:
		out = append(out, "(fsync may linger)")
	}
	for _, msg := range rd.Messages {
		out = append(out, fmt.Sprintf("send %s to %s", msg.Kind, msg.To))
	}
	if r := rd.Reply; r != nil {
		switch r.Kind {
		case ReplyCommitted:
			out = append(out, fmt.Sprintf("reply committed succeeded=%v results=%v", r.Succeeded, r.Results))
		case ReplyAborted:
			out = append(out, fmt.Sprintf("reply aborted (%s): %s", []string{"", "conflict", "unavailable", "diverged", "too large"}[r.Cause], r.Reason))
		case ReplyUnknown:
			out = append(out, "reply outcome unknown: "+r.Reason)
		}
	}
	switch rd.Answer {
	case AnswerCommit:
		out = append(out, "answer commit to those who asked")
	case AnswerAbort:
		out = append(out, "answer abort to those who asked")
	}
	if rd.Flush {
		out = append(out, "flush the log: lingering records are needed now")
	}
	if rd.Retry {
		out = append(out, "retry after a backoff")
	}
	if rd.Release {
		out = append(out, "release keys")
	}
	if len(out) == 0 {
		out = append(out, "(nothing)")
	}
	return out
}
