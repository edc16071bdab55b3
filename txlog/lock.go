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
//
// release undoes lockFile when the log is refused: it closes the file and,
// if lockFile created it, removes it, so that a refused log leaves its
// directory as it was.
func lockFile(path string) (f *os.File, release func(), err error) {
	_, statErr := os.Stat(path + ".lock")
	created := errors.Is(statErr, os.ErrNotExist)
	f, err = os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, nil, fmt.Errorf("txlog: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil, fmt.Errorf("txlog: %s: %w", path, ErrLocked)
		}
		return nil, nil, fmt.Errorf("txlog: lock %s: %w", path, err)
	}
	release = func() {
		if created {
			os.Remove(f.Name())
		}
		f.Close()
	}
	return f, release, nil
}
