package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// sdNotify sends state ("READY=1", "STOPPING=1", ...) to the service
// manager named by $NOTIFY_SOCKET, the sd_notify(3) protocol: one datagram
// on a Unix datagram socket, a path or, starting with '@', a name in the
// abstract namespace (Go's net package maps the '@' to the leading NUL).
// Without $NOTIFY_SOCKET (not started by systemd with Type=notify) it does
// nothing and returns nil. It is a few lines rather than a dependency on
// go-systemd; vsock addresses (systemd in a VM) are not supported and
// return an error.
func sdNotify(state string) error {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	if !strings.HasPrefix(name, "/") && !strings.HasPrefix(name, "@") {
		return fmt.Errorf("sd_notify: NOTIFY_SOCKET %q: only a path or an abstract name is supported", name)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %s: %w", strings.ReplaceAll(state, "\n", " "), err)
	}
	return nil
}

// reloadingState is the RELOADING=1 notification with the monotonic
// timestamp systemd 253 and later require beside it.
func reloadingState() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "RELOADING=1"
	}
	return fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000)
}

// notify sends state to systemd, logging (not returning) a failure: a
// service manager that cannot be told is no reason to stop sending.
func (d *daemon) notify(state string) {
	if err := sdNotify(state); err != nil {
		d.log.Warn("could not notify the service manager", "error", err)
	}
}

// underJournal reports whether w is the stream systemd connected to the
// journal ($JOURNAL_STREAM names its device and inode, see
// systemd.exec(5)). The journal stamps every line itself, so the logger
// then leaves out its own timestamp: one time per line in journalctl, not
// two. A stream redirected elsewhere (a file, a pipe to another program)
// keeps its timestamps.
func underJournal(w io.Writer) bool {
	js := os.Getenv("JOURNAL_STREAM")
	f, ok := w.(*os.File)
	if js == "" || !ok {
		return false
	}
	var dev, ino uint64
	if _, err := fmt.Sscanf(js, "%d:%d", &dev, &ino); err != nil {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == dev && uint64(st.Ino) == ino
}
