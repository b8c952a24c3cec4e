package control

import (
	"fmt"
	"net"
	"os"
	"slices"
	"syscall"

	"github.com/campaignd/campaignd/core"
)

// checkServer is the client's half of the peer-credential check: before
// anything is written on conn, the process serving the socket must run as
// root, as the caller's own effective uid, or as one of c.AllowUIDs. A
// user who can write the socket's directory could otherwise serve a fake
// daemon there and receive root's imports (recipient lists) and commands.
// The uid is the one the kernel recorded when the server called listen(2)
// (SO_PEERCRED on Linux, LOCAL_PEERCRED on BSDs); it cannot be forged by
// the server. It returns a core.EFORBIDDEN error naming the uid, or one
// saying the check could not be made (the connection is then not used
// either: an unverifiable server is not trusted).
func (c *Client) checkServer(conn net.Conn, path string) error {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return core.Errorf(core.EFORBIDDEN, "control socket %s: cannot check who serves it (%T has no file descriptor)", path, conn)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return &core.Error{Code: core.EFORBIDDEN, Message: fmt.Sprintf("control socket %s: cannot check who serves it: %v", path, err), Err: err}
	}
	uid, err := peerUID(rc)
	if err != nil {
		return &core.Error{Code: core.EFORBIDDEN, Message: fmt.Sprintf("control socket %s: cannot check who serves it: %v", path, err), Err: err}
	}
	me := os.Geteuid()
	if uid == 0 || uid == me || slices.Contains(c.AllowUIDs, uid) {
		return nil
	}
	return core.Errorf(core.EFORBIDDEN,
		"refusing the control socket %s: it is served by uid %d, which is not root, your uid %d or in allow_uids; "+
			"another user may be posing as the daemon (if uid %d is the daemon's own user, e.g. campaignd, add %d to allow_uids "+
			"in the config this command reads: the daemon's uid belongs there beside the operators')",
		path, uid, me, uid, uid)
}
