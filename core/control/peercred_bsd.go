//go:build darwin || freebsd

package control

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerUID returns the effective uid of the process at the other end of a
// Unix socket connection (LOCAL_PEERCRED).
func peerUID(rc syscall.RawConn) (int, error) {
	var (
		cred *unix.Xucred
		gerr error
	)
	if err := rc.Control(func(fd uintptr) {
		cred, gerr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	}); err != nil {
		return -1, fmt.Errorf("peer credentials: %w", err)
	}
	if gerr != nil {
		return -1, fmt.Errorf("peer credentials: LOCAL_PEERCRED: %w", gerr)
	}
	return int(cred.Uid), nil
}
