//go:build !linux && !darwin && !freebsd

package control

import (
	"errors"
	"syscall"
)

// peerUID fails on platforms without a peer-credential socket option, so
// every caller is refused rather than trusted.
func peerUID(syscall.RawConn) (int, error) {
	return -1, errors.New("peer credentials: not supported on this platform")
}
