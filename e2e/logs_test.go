package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// --log-format json makes every line of a server's log a JSON object
// with the shared field names; an unknown format is refused at start.
func TestJSONLogs(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	startBinary(t, dir, "p1", "participant", "--listen", addr, "--db", filepath.Join(dir, "p1.db"), "--log-format", "json")
	logFile := filepath.Join(dir, "p1.log")
	eventually(t, 30*time.Second, "the participant logs that it serves", func() error {
		b, err := os.ReadFile(logFile)
		if err != nil {
			return err
		}
		var lines []map[string]any
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("a log line that is not JSON: %q", sc.Text())
			}
			lines = append(lines, m)
		}
		for _, m := range lines {
			if m["msg"] == "serving" && m["role"] == "participant" && strings.HasSuffix(fmt.Sprint(m["url"]), addr+"/RPC2") {
				return nil
			}
		}
		return fmt.Errorf("no serving line yet in %d lines", len(lines))
	})
	out, err := exec.Command(binary, "coordinator", "--listen", freePort(t), "--log", filepath.Join(dir, "c.txlog"), "--log-format", "xml").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "text or json") {
		t.Errorf("--log-format xml: %v %q, want a refusal naming text and json", err, out)
	}
}
