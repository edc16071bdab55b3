package proc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Build compiles the twopc command into dir and returns the executable's
// path. Tests that run real processes call it once, from TestMain; the
// package path works from any folder of the module.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "twopc")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/twopc/twopc/cmd/twopc")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building twopc: %w", err)
	}
	return bin, nil
}
