package fsync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// From linux/aio_abi.h.
const (
	iocbCmdFsync  = 2
	iocbFlagResfd = 1 << 0
)

// iocb is struct iocb (64 bytes) on a little-endian 64-bit machine.
type iocb struct {
	data      uint64
	key       uint32
	rwFlags   uint32
	opcode    uint16
	reqprio   int16
	fildes    uint32
	buf       uint64
	nbytes    uint64
	offset    int64
	reserved2 uint64
	flags     uint32
	resfd     uint32
}

// ioEvent is struct io_event.
type ioEvent struct {
	data, obj uint64
	res, res2 int64
}

// aio is one file's context: one request at a time.
type aio struct {
	ctx   uintptr  // aio_context_t
	event *os.File // the eventfd, non-blocking: in Go's poller
	cb    iocb     // kept here, at a fixed heap address, while submitted
	cbs   [1]uintptr
	ev    ioEvent
	buf   [8]byte
}

func newAIO(f *os.File) (*aio, error) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		return nil, errors.ErrUnsupported // iocb's layout above is for these
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var fd uintptr
	if err := rc.Control(func(d uintptr) { fd = d }); err != nil {
		return nil, err
	}
	a := &aio{}
	if _, _, e := syscall.Syscall(syscall.SYS_IO_SETUP, 1, uintptr(unsafe.Pointer(&a.ctx)), 0); e != 0 {
		return nil, e
	}
	efd, _, e := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if e != 0 {
		syscall.Syscall(syscall.SYS_IO_DESTROY, a.ctx, 0, 0)
		return nil, e
	}
	a.event = os.NewFile(efd, "fsync eventfd")
	a.cb = iocb{opcode: iocbCmdFsync, fildes: uint32(fd), flags: iocbFlagResfd, resfd: uint32(efd)}
	a.cbs[0] = uintptr(unsafe.Pointer(&a.cb))
	return a, nil
}

// sync submits an fsync and waits for it; submitted is false if the
// kernel refused the request, and nothing was done.
func (a *aio) sync() (submitted bool, err error) {
	e := retry(func() syscall.Errno {
		_, _, e := syscall.Syscall(syscall.SYS_IO_SUBMIT, a.ctx, 1, uintptr(unsafe.Pointer(&a.cbs[0])))
		return e
	})
	runtime.KeepAlive(a)
	if e != 0 {
		return false, e
	}
	// The eventfd counts completions; one request is in flight, so one
	// read ends the wait. A failed read leaves the request in flight:
	// close (io_destroy) waits for it.
	if _, err := a.event.Read(a.buf[:]); err != nil {
		return true, fmt.Errorf("fsync: waiting for the kernel: %w", err)
	}
	if binary.NativeEndian.Uint64(a.buf[:]) != 1 {
		return true, fmt.Errorf("fsync: %d completions for one request", binary.NativeEndian.Uint64(a.buf[:]))
	}
	var n uintptr
	e = retry(func() syscall.Errno {
		var e syscall.Errno
		n, _, e = syscall.Syscall6(syscall.SYS_IO_GETEVENTS, a.ctx, 1, 1, uintptr(unsafe.Pointer(&a.ev)), 0, 0)
		return e
	})
	runtime.KeepAlive(a)
	switch {
	case e != 0:
		return true, fmt.Errorf("fsync: io_getevents: %w", e)
	case n != 1:
		return true, fmt.Errorf("fsync: io_getevents gave %d events for one", n)
	case a.ev.res < 0:
		return true, syscall.Errno(-a.ev.res)
	}
	return true, nil
}

// retry calls f again while a signal (the Go runtime's preemption, for
// one) interrupts it.
func retry(f func() syscall.Errno) syscall.Errno {
	for {
		if e := f(); e != syscall.EINTR {
			return e
		}
	}
}

// close releases the context (io_destroy waits for a request in flight)
// and the eventfd.
func (a *aio) close() {
	syscall.Syscall(syscall.SYS_IO_DESTROY, a.ctx, 0, 0)
	a.event.Close()
}
