package fsync

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
)

func tempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "f"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// On Linux a regular file's fsyncs go to the kernel's AIO, and each
// returns once done, from any number of goroutines, the file intact.
func TestSyncsOfAFile(t *testing.T) {
	f := tempFile(t)
	s := New(f)
	defer s.Close()
	if runtime.GOOS == "linux" && !s.Async() {
		t.Fatal("a regular file's fsyncs do not go to the kernel's AIO")
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var want []byte
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				line := []byte{'a' + byte(g), '0' + byte(i%10), '\n'}
				mu.Lock()
				_, err := f.Write(line)
				want = append(want, line...)
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
				if err := s.Sync(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got, err := os.ReadFile(f.Name())
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("file after the syncs: %d bytes (%v), want %d", len(got), err, len(want))
	}
	if runtime.GOOS == "linux" && !s.Async() {
		t.Fatal("the fsyncs stopped going to the kernel's AIO")
	}
}

// A file that cannot be synced (a pipe: the kernel refuses its AIO
// fsync before doing anything) fails as (*os.File).Sync fails, and
// Sync calls that from then on.
func TestSyncOfAPipeFails(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	s := New(w)
	defer s.Close()
	for range 2 {
		if err := s.Sync(); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("Sync of a pipe: %v, want EINVAL", err)
		}
		if s.Async() {
			t.Fatal("still AIO after the kernel refused it")
		}
	}
}

// After Close, Sync still syncs, with (*os.File).Sync.
func TestSyncAfterClose(t *testing.T) {
	f := tempFile(t)
	s := New(f)
	s.Close()
	s.Close()
	if s.Async() {
		t.Fatal("AIO after Close")
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
}
