package fsync

import (
	"os"
	"sync"
)

// A File syncs one file. It is safe for concurrent use (one fsync at a
// time is in flight; concurrent calls wait their turn).
type File struct {
	f  *os.File
	mu sync.Mutex
	a  *aio // nil: (*os.File).Sync
}

// New returns a File that syncs f. Close it when done with f.
func New(f *os.File) *File {
	a, err := newAIO(f)
	if err != nil {
		a = nil
	}
	return &File{f: f, a: a}
}

// Sync makes everything written to the file durable, as f.Sync does.
func (s *File) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.a != nil {
		submitted, err := s.a.sync()
		if submitted {
			return err
		}
		// Refused before anything was submitted: not for this file.
		s.a.close()
		s.a = nil
	}
	return s.f.Sync()
}

// Async says whether Sync hands fsyncs to the kernel (false: it calls
// (*os.File).Sync).
func (s *File) Async() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.a != nil
}

// Close releases what Sync holds besides the file (which it leaves open).
func (s *File) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.a != nil {
		s.a.close()
		s.a = nil
	}
}
