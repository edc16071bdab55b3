package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestFormats(t *testing.T) {
	var text, js bytes.Buffer
	lt, err := New(&text, "text", "participant")
	if err != nil {
		t.Fatal(err)
	}
	lt.Info("resolved", TxID, "1.2")
	if got := text.String(); !strings.Contains(got, "role=participant") || !strings.Contains(got, "txid=1.2") {
		t.Errorf("text: %q", got)
	}
	lj, err := New(&js, "json", "coordinator")
	if err != nil {
		t.Fatal(err)
	}
	lj.Info("recovered", TxID, "1.2")
	var line map[string]any
	if err := json.Unmarshal(js.Bytes(), &line); err != nil {
		t.Fatalf("json: %v in %q", err, js.String())
	}
	if line["role"] != "coordinator" || line["txid"] != "1.2" || line["msg"] != "recovered" {
		t.Errorf("json: %v", line)
	}
	if _, err := New(&js, "xml", "coordinator"); err == nil || !strings.Contains(err.Error(), "text or json") {
		t.Errorf("an unknown format: %v", err)
	}
}
