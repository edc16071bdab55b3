package deploy

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// binaryFile is the twopc executable to deploy, read once for all hosts.
type binaryFile struct {
	data    []byte
	sum     string // sha256, compared with the installed one
	arch    string // as uname -m names it
	version string
}

// unameMachine maps ELF machines to what uname -m prints, to refuse a
// binary the host cannot run before uploading it.
var unameMachine = map[elf.Machine]string{
	elf.EM_X86_64:  "x86_64",
	elf.EM_AARCH64: "aarch64",
	elf.EM_386:     "i686",
	elf.EM_ARM:     "armv7l",
	elf.EM_RISCV:   "riscv64",
}

func readBinary(path string) (binaryFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return binaryFile{}, fmt.Errorf("binary: %w (build it first: go tool mage build)", err)
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return binaryFile{}, fmt.Errorf("binary %s is not a Linux executable: %w", path, err)
	}
	arch, ok := unameMachine[f.Machine]
	if !ok {
		return binaryFile{}, fmt.Errorf("binary %s: unsupported machine %v", path, f.Machine)
	}
	b := binaryFile{data: data, sum: sha256hex(data), arch: arch, version: "?"}
	// The binary runs here too when it was built here, which is the usual
	// case (cgo makes cross builds rare); otherwise the version stays "?".
	if out, err := exec.Command(path, "version").Output(); err == nil {
		b.version = strings.TrimSpace(string(out))
	}
	return b, nil
}
