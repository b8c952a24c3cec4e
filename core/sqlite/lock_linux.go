package sqlite

import "golang.org/x/sys/unix"

// Open-file-description locks: released when the last descriptor of the
// open file closes (so by the kernel when the process dies), and owned by
// the open file rather than the process, so FileLocks in one process
// conflict with each other like those of two processes.
const (
	setLockCmd = unix.F_OFD_SETLK
	getLockCmd = unix.F_OFD_GETLK
)
