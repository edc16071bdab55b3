package secret

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Read returns the token in the file at path.
func Read(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok, _, _ := strings.Cut(string(b), "\n")
	if tok = strings.TrimSpace(tok); tok == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return tok, nil
}

// Load returns the token in file or, when file is "", the value of the
// environment variable env ("" if unset: no token).
func Load(file, env string) (string, error) {
	if file == "" {
		return strings.TrimSpace(os.Getenv(env)), nil
	}
	return Read(file)
}

// Create writes a new random token to a new file at path (mode 0600; a
// missing folder is made 0700) and returns it. An existing file is an
// error satisfying errors.Is(err, fs.ErrExist).
func Create(path string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	_, err = f.WriteString(tok + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", err
	}
	return tok, nil
}

// Ensure returns the token in path, creating the file with a new token
// first if there is none.
func Ensure(path string) (string, error) {
	tok, err := Create(path)
	if errors.Is(err, fs.ErrExist) {
		return Read(path) // already there, or another process just made it
	}
	return tok, err
}
