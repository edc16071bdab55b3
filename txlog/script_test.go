package txlog

import (
	"bytes"
	"fmt"
	"github.com/twopc/twopc/protocol"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestScripts runs the scenarios in testdata/script against a real log file.
// A line "> command" runs a command; the lines after it, up to the next
// command, are its expected output. Blank lines and lines starting with #
// are ignored. Commands:
//
//	epoch N                     Append an epoch record
//	commit TX P1,P2 KEY...      Append a commit (keys separated by spaces,
//	                            or Go-quoted if the first starts with ")
//	end TX                      Append an end
//	exclude|include|remove P    Append a membership record
//	join P URL                  Append a join
//	async epoch|commit|end ...  the same with AppendAsync
//	compact                     Compact
//	reopen                      Close and Open again
//	state                       the state Open returned last
//	scan                        Scan the file (prints like state)
//	file                        the file's lines, without checksums
//
// A command that fails prints "error: " and the error.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/script/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runScript(t, file) })
	}
}

type scriptStep struct {
	line int
	cmd  string
	want []string
}

func parseScript(t *testing.T, file string) []scriptStep {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var steps []scriptStep
	for i, l := range strings.Split(string(data), "\n") {
		switch {
		case strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "> "):
			steps = append(steps, scriptStep{line: i + 1, cmd: l[2:]})
		case len(steps) == 0:
			t.Fatalf("%s:%d: output before the first command", file, i+1)
		default:
			s := &steps[len(steps)-1]
			s.want = append(s.want, l)
		}
	}
	return steps
}

func runScript(t *testing.T, file string) {
	path := tempLog(t)
	l, st := openLog(t, path, Options{CompactBytes: -1})
	defer func() { l.Close() }()

	for _, step := range parseScript(t, file) {
		var out []string
		printf := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
		check := func(err error) {
			if err != nil {
				printf("error: %v", strings.ReplaceAll(err.Error(), path, "LOG"))
			}
		}

		args := strings.Fields(step.cmd)
		appendFn := l.Append
		if args[0] == "async" {
			appendFn, args = l.AppendAsync, args[1:]
		}
		switch args[0] {
		case "epoch":
			n, err := strconv.ParseUint(args[1], 10, 64)
			if err != nil {
				t.Fatalf("%s:%d: %v", file, step.line, err)
			}
			check(appendFn(epochRec(n)))
		case "commit", "staged":
			f := strings.SplitN(strings.TrimPrefix(step.cmd, "async "), " ", 4)
			if len(f) < 4 {
				t.Fatalf("%s:%d: want %s TX P1,P2 KEY", file, step.line, args[0])
			}
			rec := commitRec(f[1], "", strings.Split(f[2], ",")...)
			rec.Keys = strings.Fields(f[3])
			if strings.HasPrefix(f[3], `"`) {
				keys, err := parseKeys(f[3])
				if err != nil {
					t.Fatalf("%s:%d: %v", file, step.line, err)
				}
				rec.Keys = keys
			}
			rec.Kind = protocol.Kind(args[0])
			check(appendFn(rec))
		case "end", "abort":
			check(appendFn(protocol.Record{Kind: protocol.Kind(args[0]), TxID: args[1]}))
		case "exclude", "include", "remove", "join":
			rec := protocol.Record{Kind: protocol.Kind(args[0]), Participants: []string{args[1]}}
			if len(args) > 2 {
				rec.URL = args[2]
			}
			check(appendFn(rec))
		case "compact":
			check(l.Compact())
		case "reopen":
			check(l.Close())
			l, st = openLog(t, path, Options{CompactBytes: -1})
			if st.TornTail != nil {
				printf("torn tail at %d", st.TornTail.Offset)
			}
		case "state":
			printState(printf, st)
		case "scan":
			s, err := Scan(path)
			check(err)
			if err == nil {
				printState(printf, s)
			}
		case "file":
			for _, ln := range bytes.SplitAfter(bytes.TrimRight(readFile(t, path), "\n"), []byte("\n")) {
				if len(ln) > 0 {
					printf("%s", strings.TrimSuffix(string(ln[headerLen:]), "\n"))
				}
			}
		default:
			t.Fatalf("%s:%d: unknown command %q", file, step.line, step.cmd)
		}
		if got, want := strings.Join(out, "\n"), strings.Join(step.want, "\n"); got != want {
			t.Errorf("%s:%d: > %s\ngot:\n%s\nwant:\n%s", file, step.line, step.cmd, got, want)
		}
	}
}

func printState(printf func(string, ...any), st *State) {
	printf("epoch %d", st.Epoch)
	for _, j := range st.Joined {
		printf("joined %s %s", j.Name, j.URL)
	}
	for _, p := range st.Excluded {
		printf("excluded %s", p)
	}
	for _, p := range st.Removed {
		printf("removed %s", p)
	}
	for _, r := range st.Pending {
		what := "pending"
		if r.Kind == protocol.KindStaged {
			what = "staged"
		}
		var keys []string
		for _, k := range r.Keys {
			keys = append(keys, strconv.Quote(k))
		}
		printf("%s %s %s %s", what, r.TxID, strings.Join(r.Participants, ","), strings.Join(keys, " "))
	}
}
