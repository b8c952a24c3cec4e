package main

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sdNotify reaches a socket in the abstract namespace (NOTIFY_SOCKET
// starting with @), does nothing without NOTIFY_SOCKET, and refuses an
// address kind it does not speak.
func TestSdNotify(t *testing.T) {
	name := fmt.Sprintf("@campaignd-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv("NOTIFY_SOCKET", name)
	if err := sdNotify("READY=1"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = l.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := l.ReadFromUnix(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if st := reloadingState(); !strings.HasPrefix(st, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Fatalf("reloading state %q", st)
	}
	t.Setenv("NOTIFY_SOCKET", "vsock:2:1234")
	if err := sdNotify("READY=1"); err == nil {
		t.Fatal("vsock address accepted")
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdNotify("READY=1"); err != nil {
		t.Fatalf("without NOTIFY_SOCKET: %v", err)
	}
}

// Under journald (JOURNAL_STREAM naming the very stream the logger writes
// to) log lines carry no timestamp of their own; written anywhere else,
// they do.
func TestJournalLogsWithoutTimestamps(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	line := func() string {
		t.Helper()
		if err := f.Truncate(0); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Seek(0, 0); err != nil {
			t.Fatal(err)
		}
		newLogger("info", "text", f).Info("serving")
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	if got := line(); !strings.HasPrefix(got, "[INFO]") {
		t.Fatalf("under journald: %q, want no timestamp", got)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino+1))
	if got := line(); strings.HasPrefix(got, "[INFO]") || !strings.Contains(got, "[INFO]") {
		t.Fatalf("another stream: %q, want a timestamp", got)
	}
}
