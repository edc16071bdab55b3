// Package fsync makes a file's writes durable, as (*os.File).Sync does,
// without keeping a thread, and the Go scheduler's P with it, in the
// system call while the disk works.
//
// Why: a coordinator runs on one P (twopc local), and its log's fsync,
// a few hundred microseconds, held that P: participants' votes and
// clients' calls waited until the runtime's monitor (sysmon) took the P
// back. With its fsyncs in the kernel, serial puts went 1.07-1.09x as
// fast (bench/slices.sh); at 64 clients, and for 8-put transactions,
// puts/s did not change. The participants' vote logs, whose fsync is
// what each prepare waits for, measured worse with it (0.94x serial
// puts), so they keep (*os.File).Sync.
//
// How, on Linux: the fsync is submitted as an asynchronous I/O request
// (io_submit of IOCB_CMD_FSYNC, Linux 4.18 and later), which a kernel
// worker runs as fsync(2) itself (vfs_fsync on the same file); its
// completion is signalled on an eventfd that waits in Go's network
// poller like a socket, so the goroutine parks and its P runs others.
// Where that is refused (no AIO, a file system without fsync, a
// sandbox's filter), Sync calls (*os.File).Sync instead, from then on.
//
// The fsync's own kernel work then runs in a kernel worker thread, so it
// no longer counts in the process's CPU time (/proc/PID/stat): judge it
// by whole-machine figures (ops/s), not by the process's CPU.
package fsync
