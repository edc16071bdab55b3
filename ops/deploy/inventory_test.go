package deploy

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestExampleInventoryParses(t *testing.T) {
	inv, err := LoadInventory("../../deploy/inventory.example.json")
	if err != nil {
		t.Fatal(err)
	}
	if got := inv.Coordinator().Name; got != "db1" {
		t.Errorf("coordinator %q", got)
	}
	db3 := inv.Hosts[2]
	if db3.User != "ops" || db3.Port != 2222 || db3.Key != KeyAgent || db3.Dir != "/home/ops/twopc" || filepath.Base(db3.TLSCert) != "db3.crt" {
		t.Errorf("db3 overrides lost: %+v", db3)
	}
	if db2 := inv.Hosts[1]; db2.User != "twopc" || db2.Port != 22 || db2.Dir != "/srv/twopc" || db2.Service != ServiceAuto {
		t.Errorf("db2 defaults not applied: %+v", db2)
	}
	// 0.0.0.0 is reached at the host's address; the example turns TLS on.
	if got := inv.participantsFlag(membership{}); got != "db1=https://10.0.0.1:7401/RPC2,db2=https://10.0.0.2:7401/RPC2,db3=https://db3.example.net:7401/RPC2" {
		t.Errorf("--participants %s", got)
	}
	args := strings.Join(inv.args(db3, RoleParticipant, membership{}), " ")
	if args != "participant --listen 0.0.0.0:7401 --db /home/ops/twopc/data/participant.db --coordinator https://10.0.0.1:7400/RPC2 --peer-token-file /home/ops/twopc/etc/peer.token"+
		" --tls-cert /home/ops/twopc/etc/cert.pem --tls-key /home/ops/twopc/etc/key.pem --tls-ca /home/ops/twopc/etc/ca.pem" {
		t.Errorf("args %s", args)
	}
}

// TestInventoryRefusesContradictions: every mistake is reported before
// anything is touched, each with a message that says what to fix.
func TestInventoryRefusesContradictions(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{
			"defaults": map[string]any{"user": "u", "key": "/k", "dir": "/srv/twopc"},
			"hosts": []any{
				map[string]any{"name": "a", "address": "10.0.0.1", "roles": []string{"coordinator", "participant"},
					"coordinator_listen": "10.0.0.1:7400", "participant_listen": "10.0.0.1:7401"},
				map[string]any{"name": "b", "address": "10.0.0.2", "roles": []string{"participant"}, "participant_listen": "10.0.0.2:7401"},
			},
		}
	}
	host := func(m map[string]any, i int) map[string]any { return m["hosts"].([]any)[i].(map[string]any) }
	for _, tc := range []struct {
		name, want string
		edit       func(m map[string]any)
	}{
		{"unknown field", `host "a": unknown field "adress" (did you mean "address"?)`, func(m map[string]any) { host(m, 0)["adress"] = "x" }},
		{"no hosts", "no hosts", func(m map[string]any) { m["hosts"] = []any{} }},
		{"duplicate name", "name used twice", func(m map[string]any) { host(m, 1)["name"] = "a" }},
		{"bad name", "name must be", func(m map[string]any) { host(m, 1)["name"] = "B 2" }},
		{"no address", "address", func(m map[string]any) { delete(host(m, 1), "address") }},
		{"no user", "no SSH user", func(m map[string]any) { delete(m["defaults"].(map[string]any), "user") }},
		{"no key", "no SSH key", func(m map[string]any) { delete(m["defaults"].(map[string]any), "key") }},
		{"bad port", "SSH port", func(m map[string]any) { host(m, 1)["port"] = 70000 }},
		{"relative dir", "dir", func(m map[string]any) { host(m, 1)["dir"] = "srv" }},
		{"shell in dir", "dir", func(m map[string]any) { host(m, 1)["dir"] = "/srv/$(reboot)" }},
		{"shared dir", "same address and dir", func(m map[string]any) {
			host(m, 1)["address"] = "10.0.0.1"
			host(m, 1)["participant_listen"] = "10.0.0.1:7402"
		}},
		{"two coordinators", "want 1, 3 or 5 hosts with the coordinator role, found 2: a group of 2 stops if 1 of them are lost, as one of 1 does, and a group of 2 cannot lose either", func(m map[string]any) {
			host(m, 1)["roles"] = []string{"coordinator", "participant"}
			host(m, 1)["coordinator_listen"] = "10.0.0.2:7400"
		}},
		{"no coordinator", "found 0", func(m map[string]any) {
			host(m, 0)["roles"] = []string{"participant"}
			delete(host(m, 0), "coordinator_listen")
		}},
		{"no participant", "at least one host with the participant role", func(m map[string]any) {
			m["hosts"] = m["hosts"].([]any)[:1]
			host(m, 0)["roles"] = []string{"coordinator"}
			delete(host(m, 0), "participant_listen")
		}},
		{"unknown role", "unknown role", func(m map[string]any) { host(m, 1)["roles"] = []string{"participant", "witness"} }},
		{"role without listen", "no participant_listen", func(m map[string]any) { delete(host(m, 1), "participant_listen") }},
		{"listen without role", "does not have the coordinator role", func(m map[string]any) { host(m, 1)["coordinator_listen"] = "10.0.0.2:7400" }},
		{"same port twice", "already used", func(m map[string]any) { host(m, 0)["participant_listen"] = "10.0.0.1:7400" }},
		{"bad listen", "want host:port", func(m map[string]any) { host(m, 1)["participant_listen"] = "7401" }},
		{"bad service", "service", func(m map[string]any) { host(m, 1)["service"] = "upstart" }},
		{"bad exclude_after", `exclude_after "5"`, func(m map[string]any) { m["exclude_after"] = "5" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			tc.edit(m)
			data, _ := json.Marshal(m)
			_, err := ParseInventory(data, "/")
			if err == nil || !errors.Is(err, ErrInventory) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	data, _ := json.Marshal(base())
	inv, err := ParseInventory(data, "/")
	if err != nil {
		t.Fatalf("the base inventory is valid: %v", err)
	}
	for target, want := range map[string]string{"all": "a,b", "": "a,b", "coordinator": "a", "participant": "a,b", "b": "b", "a/coordinator": "a", "b/participant": "b"} {
		hs, err := inv.Select(target)
		var names []string
		for _, h := range hs {
			names = append(names, h.Name)
		}
		if err != nil || strings.Join(names, ",") != want {
			t.Errorf("Select(%q) = %v, %v; want %s", target, names, err, want)
		}
	}
	if _, err := inv.Select("c"); err == nil || !strings.Contains(err.Error(), "a, b") {
		t.Errorf("Select of an unknown host: %v", err)
	}
	if _, err := inv.Select("b/coordinator"); err == nil || !strings.Contains(err.Error(), "b does not have the coordinator role") {
		t.Errorf("Select of a role the host lacks: %v", err)
	}
}

func TestUnitFileQuotes(t *testing.T) {
	if got := systemdQuote(`a b%$"`); got != `"a b%%$$\""` {
		t.Errorf("systemdQuote = %s", got)
	}
	if got := shQuote(`it's`); got != `'it'\''s'` {
		t.Errorf("shQuote = %s", got)
	}
	inv, err := LoadInventory("../../deploy/inventory.example.json")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(inv.unitFile(inv.Hosts[0], RoleCoordinator, membership{}))
	for _, want := range []string{"ExecStart=/srv/twopc/bin/twopc coordinator --listen 10.0.0.1:7400", "Restart=on-failure", "UMask=0077"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	if unitName(inv.Hosts[0], RoleCoordinator) != "twopc-db1-coordinator.service" {
		t.Error(unitName(inv.Hosts[0], RoleCoordinator))
	}
}

// TestInventoryErrorsSayWhere: a misspelt field, a wrong type and a
// missing value are reported together, each naming its host and field,
// and the JSON mistakes their line and column.
func TestInventoryErrorsSayWhere(t *testing.T) {
	doc := `{
  "know_hosts": "kh",
  "defaults": {"user": "u", "key": "/k", "dir": "/srv/twopc"},
  "hosts": [
    {"name": "db1", "address": "10.0.0.1", "roles": ["coordinator"], "coordinator_listen": "10.0.0.1:7400"},
    {"name": "db2", "address": "10.0.0.2", "roles": ["participant"],
     "participant_lisen": "10.0.0.2:7401"},
    {"name": "db3", "address": "10.0.0.3", "roles": ["participant"], "participant_listen": "10.0.0.3:7401", "port": "22"},
    {"name": "db4", "roles": ["participant"], "participant_listen": "10.0.0.4:7401"}
  ]
}`
	_, err := ParseInventory([]byte(doc), "/")
	if err == nil || !errors.Is(err, ErrInventory) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{
		`line 2, column 3: unknown field "know_hosts" (did you mean "known_hosts"?)`,
		`line 7, column 6: host "db2": unknown field "participant_lisen" (did you mean "participant_listen"?)`,
		`host "db2": role participant but no participant_listen`,
		`host "db3": port: want int, found a JSON string`,
		`host "db4": address "": want a host name or IP`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q:\n%v", want, err)
		}
	}
	if !strings.Contains(err.Error(), "5 problems") {
		t.Errorf("want all 5 problems counted:\n%v", err)
	}

	_, err = ParseInventory([]byte("{\n  \"hosts\": [\n    {\"name\": \"db1\",, \"address\": \"x\"}\n  ]\n}"), "/")
	if err == nil || !strings.Contains(err.Error(), `line 3, column 20: not valid JSON: invalid character ','`) {
		t.Errorf("syntax error: %v", err)
	}
}
