package txlog

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrLocked: another process has the log open. Two coordinators deciding
// on one log would each think they alone decide: split brain.
var ErrLocked = errors.New("log is in use by another process")

// lockFile takes an exclusive lock on path+".lock" for as long as the
// returned file stays open. The lock is on a file of its own because
// compaction replaces the log file (and a lock on it would go with it).
// The kernel drops the lock when the process dies, so a crash never
// leaves it behind.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("txlog: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("txlog: %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("txlog: lock %s: %w", path, err)
	}
	return f, nil
}
