package main_test

import (
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// notification is one datagram the daemon sent to NOTIFY_SOCKET, with
// whether the control socket answered when it was read.
type notification struct {
	state    string
	socketUp bool
}

// The daemon speaks sd_notify to a fake service manager: READY=1 once its
// control socket answers, RELOADING=1 (with MONOTONIC_USEC) then READY=1
// around a SIGHUP reload, and STOPPING=1 on SIGTERM, before it exits 0.
func TestNotifyProtocol(t *testing.T) {
	e := NewEnv(t, "")
	path := filepath.Join(e.Dir, "notify.sock")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan notification, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := l.ReadFromUnix(buf)
			if err != nil {
				return
			}
			state := string(buf[:n])
			// Checked at once: READY=1 must mean the socket answers.
			got <- notification{state: state, socketUp: strings.HasPrefix(state, "READY=1") && e.statusOK()}
		}
	}()
	next := func(what string) notification {
		t.Helper()
		select {
		case n := <-got:
			return n
		case <-time.After(20 * time.Second):
			t.Fatalf("no %s notification within 20s", what)
			return notification{}
		}
	}
	e.ExtraEnv = append(e.ExtraEnv, "NOTIFY_SOCKET="+path)
	d := e.StartDaemon()

	if n := next("READY=1"); !strings.HasPrefix(n.state, "READY=1\n") || !n.socketUp ||
		!strings.Contains(n.state, "STATUS=serving on "+e.Socket) {
		t.Fatalf("first notification %q (socket answered: %v), want READY=1 with the socket up", n.state, n.socketUp)
	}

	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if n := next("RELOADING=1"); !strings.HasPrefix(n.state, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Fatalf("after SIGHUP %q, want RELOADING=1 and MONOTONIC_USEC", n.state)
	}
	if n := next("READY=1 after the reload"); !strings.HasPrefix(n.state, "READY=1") || !n.socketUp {
		t.Fatalf("after the reload %q (socket answered: %v), want READY=1", n.state, n.socketUp)
	}

	if err := d.Stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, d.Stderr())
	}
	if n := next("STOPPING=1"); n.state != "STOPPING=1" {
		t.Fatalf("on SIGTERM %q, want STOPPING=1", n.state)
	}
	select {
	case n := <-got:
		t.Fatalf("unexpected notification after STOPPING=1: %q", n.state)
	default:
	}
}
