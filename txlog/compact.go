package txlog

import (
	"os"
)

// dueForCompaction: the file is over its budget and mostly holds finished
// transactions. The quarter keeps a log whose live records alone exceed the
// budget from compacting after every batch.
func (l *Log) dueForCompaction() bool {
	size := l.size.Load()
	return l.opts.CompactBytes > 0 && size > l.opts.CompactBytes && l.live.size()*4 < size
}

// compact replaces the file by one holding only the live records: write a
// temporary file, fsync it, rename it over the log, fsync the directory.
// The writer calls it between batches. A crash at any point leaves either
// the old log or the new one under path, and both replay to the same state.
func (l *Log) compact() error {
	tmp := l.path + ".compact.tmp"
	fi, err := os.Stat(l.path)
	if err != nil {
		return failed(l.path, "stat", err)
	}
	file, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return failed(tmp, "create", err)
	}
	f, err := NewAppender(file, 0)
	if err != nil {
		file.Close()
		return failed(tmp, "stat", err)
	}
	if l.opts.SyncInKernel {
		f.SyncInKernel()
	}
	var buf []byte
	for _, r := range l.live.records() {
		buf = appendLine(buf, r)
	}
	abandon := func(op string, err error) error {
		f.Close()
		os.Remove(tmp)
		return failed(tmp, op, err)
	}
	if _, err := f.Write(buf); err != nil {
		return abandon("write", err)
	}
	if err := l.failpoint("compact-sync"); err != nil {
		return abandon("fsync", err)
	}
	if err := f.Sync(); err != nil {
		return abandon("fsync", err)
	}
	l.fsyncs.Add(1)
	if err := l.failpoint("compact-rename"); err != nil {
		return abandon("rename", err)
	}
	if err := os.Rename(tmp, l.path); err != nil {
		return abandon("rename", err)
	}

	// From here on path names the new file; keep appending to it through the
	// descriptor we already hold. The old file is unlinked and nothing in it
	// is needed any more, so an error closing it changes nothing.
	old := l.f
	l.f = f
	old.Close()
	l.size.Store(int64(len(buf)))
	l.unsynced = false
	if err := syncDir(l.path); err != nil {
		return failed(l.path, "compact", err)
	}
	l.fsyncs.Add(1)
	l.compactions.Add(1)
	return nil
}
