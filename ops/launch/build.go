package launch

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Build compiles the twopc command into dir and returns the executable's
// path. The package path works from any folder of the module.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "twopc")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/twopc/twopc/cmd/twopc")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building twopc: %w", err)
	}
	return bin, nil
}

// RunTests is the TestMain of a package whose tests run real processes:
// it builds twopc once into a temporary folder, points *binary at it, runs
// the tests (m is the *testing.M) and exits with their status.
func RunTests(m interface{ Run() int }, binary *string) {
	dir, err := os.MkdirTemp("", "twopc-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *binary, err = Build(dir); err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
