//go:build !linux

package sqlite

import "golang.org/x/sys/unix"

// Without open-file-description locks, classic POSIX record locks: the
// kernel still releases them when the process dies and they still exclude
// other processes, but they belong to the process, so two FileLocks in one
// process do not exclude each other (the engine's in-process campaign
// locks still keep its own ticks apart), and closing any descriptor of the
// file drops them. Production runs on Linux.
const (
	setLockCmd = unix.F_SETLK
	getLockCmd = unix.F_GETLK
)
