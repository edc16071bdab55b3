package txlog

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/twopc/twopc/protocol"
)

// Open opens the log at path, creating it if missing, and returns it with
// the state it holds. A torn tail is cut off (a copy of the whole file is
// kept next to it) and reported in State.TornTail; any other damage is
// ErrCorrupt and leaves the file untouched.
func Open(path string, opts Options) (*Log, *State, error) {
	if opts.CompactBytes == 0 {
		opts.CompactBytes = DefaultCompactBytes
	}
	lock, release, err := lockFile(path)
	if err != nil {
		return nil, nil, err
	}
	l, st, err := open(path, opts)
	if err != nil {
		release()
		return nil, nil, err
	}
	l.lock = lock
	return l, st, nil
}

func open(path string, opts Options) (*Log, *State, error) {
	if opts.Linger <= 0 {
		opts.Linger = time.Millisecond
	}
	f, err := openOrCreate(path)
	if err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("txlog: read %s: %w", path, err)
	}
	s, end, err := replay(path, data)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	// A compaction that crashed before its rename left only garbage: the log
	// itself was still whole. (Removed only now, so that a refused log
	// leaves its directory as it was.)
	if err := os.Remove(path + ".compact.tmp"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		f.Close()
		return nil, nil, fmt.Errorf("txlog: %w", err)
	}
	st := s.state()
	if !isPadding(data[end:]) {
		if st.TornTail, err = cutTail(f, path, data, end); err != nil {
			f.Close()
			return nil, nil, err
		}
	}
	a, err := NewAppender(f, end)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("txlog: %w", err)
	}
	if opts.SyncInKernel {
		a.SyncInKernel()
	}
	l := &Log{
		path:  path,
		opts:  opts,
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
		cur:   newBatch(nil),
		epoch: s.epoch,
		f:     a,
		live:  s,
	}
	l.size.Store(end)
	if s.format < Format {
		// A file of an older format (format 1 had no format line) is
		// rewritten in this one before anything is appended, so that an
		// older twopc refuses it at its first line instead of misreading
		// a record of several keys.
		if err := l.compact(); err != nil {
			l.f.Close()
			return nil, nil, err
		}
	}
	go l.run()
	return l, st, nil
}

func openOrCreate(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err == nil {
		// A new file starts with its format line, and is only there after
		// a crash once its directory entry is.
		_, err := f.Write(appendLine(nil, protocol.Record{Kind: protocol.KindFormat, Format: Format}))
		if err == nil {
			err = f.Sync()
		}
		if err == nil {
			err = syncDir(path)
		}
		if err == nil {
			_, err = f.Seek(0, io.SeekStart) // to read it back
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("txlog: %w", err)
		}
		return f, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("txlog: %w", err)
	}
	f, err = os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("txlog: %w", err)
	}
	return f, nil
}

// cutTail keeps a durable copy of data, the whole file, then truncates the
// file to end.
func cutTail(f *os.File, path string, data []byte, end int64) (*Torn, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("txlog: %w", err)
	}
	cp := fmt.Sprintf("%s.torn-%d", path, time.Now().UnixNano())
	if err := writeFileSync(cp, data, fi.Mode().Perm()); err != nil {
		return nil, err
	}
	// The copy must be on disk, name included, before the tail is gone.
	if err := syncDir(path); err != nil {
		return nil, fmt.Errorf("txlog: cut torn tail: %w", err)
	}
	if err := f.Truncate(end); err != nil {
		return nil, fmt.Errorf("txlog: cut torn tail: %w", err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("txlog: cut torn tail: fsync %s: %w", path, err)
	}
	if err := syncDir(path); err != nil {
		return nil, fmt.Errorf("txlog: cut torn tail: %w", err)
	}
	return &Torn{Offset: end, Bytes: tornBytes(data, end), CopyPath: cp}, nil
}

func writeFileSync(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("txlog: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("txlog: write %s: %w", path, err)
	}
	return nil
}

// syncDir fsyncs the directory holding path, making its entries (a new
// file, a rename) durable.
func syncDir(path string) error {
	dir := filepath.Dir(path)
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
