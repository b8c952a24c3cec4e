//go:build linux

package control

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerUID returns the effective uid of the process at the other end of a
// Unix socket connection, as the kernel recorded it at connect(2).
func peerUID(rc syscall.RawConn) (int, error) {
	var (
		cred *unix.Ucred
		gerr error
	)
	if err := rc.Control(func(fd uintptr) {
		cred, gerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return -1, fmt.Errorf("peer credentials: %w", err)
	}
	if gerr != nil {
		return -1, fmt.Errorf("peer credentials: SO_PEERCRED: %w", gerr)
	}
	return int(cred.Uid), nil
}
