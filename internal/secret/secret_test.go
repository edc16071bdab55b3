package secret

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCreateThenRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "peer.token")
	tok, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 64 {
		t.Fatalf("token %d characters long, want 64 (32 random bytes in hex)", len(tok))
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if got, err := Read(path); err != nil || got != tok {
		t.Fatalf("Read = %q, %v; want what Create wrote", got, err)
	}
	if _, err := Create(path); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create: %v, want fs.ErrExist (never replace a token)", err)
	}
	if got, err := Ensure(path); err != nil || got != tok {
		t.Fatalf("Ensure of an existing file = %q, %v; want the token in it", got, err)
	}
	other, err := Ensure(filepath.Join(t.TempDir(), "new.token"))
	if err != nil || other == tok || len(other) != 64 {
		t.Fatalf("Ensure of a missing file = %q, %v; want a new token", other, err)
	}
}

func TestReadRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode) // past the umask
		return p
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"readable by others", write("loose", "s3cret\n", 0o644), "readable by others"},
		{"empty", write("empty", " \n", 0o600), "is empty"},
		{"missing", filepath.Join(dir, "missing"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Read = %v, want an error saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the error shows the token: %v", err)
			}
		})
	}
	if got, err := Read(write("two", "  tok \nsecond line\n", 0o600)); err != nil || got != "tok" {
		t.Fatalf("Read = %q, %v; want the first line, trimmed", got, err)
	}
}

func TestLoadFallsBackToTheEnvironment(t *testing.T) {
	t.Setenv("TWOPC_TEST_TOKEN", " from-env ")
	if got, err := Load("", "TWOPC_TEST_TOKEN"); err != nil || got != "from-env" {
		t.Fatalf("Load without a file = %q, %v", got, err)
	}
	path := filepath.Join(t.TempDir(), "t")
	os.WriteFile(path, []byte("from-file\n"), 0o600)
	if got, err := Load(path, "TWOPC_TEST_TOKEN"); err != nil || got != "from-file" {
		t.Fatalf("Load with a file = %q, %v; the file wins", got, err)
	}
}
