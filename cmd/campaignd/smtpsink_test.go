package main_test

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
)

// NewSink starts the in-process SMTP server of the end-to-end tests
// (plugins/smtp/smtptest) on a free loopback port, recording every message
// it accepts and answering as the faults script; it stops at cleanup.
func NewSink(tb testing.TB, faults ...smtptest.Fault) *smtptest.Server {
	tb.Helper()
	return startSink(tb, smtptest.Options{Faults: faults})
}

// startSink starts an smtptest server with opts; it stops at cleanup.
func startSink(tb testing.TB, opts smtptest.Options) *smtptest.Server {
	tb.Helper()
	s, err := smtptest.Start(opts)
	if err != nil {
		tb.Fatalf("sink: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// sinkTOML is a [senders.NAME] table for the smtp plugin pointing at s.
func sinkTOML(name string, s *smtptest.Server, extra ...string) string {
	port, _ := strconv.Atoi(s.Port)
	return smtpSenderTOML(name, s.Host, port, extra...)
}

// waitStalling waits until s holds at least n replies back.
func waitStalling(tb testing.TB, s *smtptest.Server, n int, timeout time.Duration) {
	tb.Helper()
	if err := s.WaitStalling(n, timeout); err != nil {
		tb.Fatal(err)
	}
}

// smtpSenderTOML configures the smtp plugin for host:port, plain SMTP,
// with short timeouts; extra are more `key = value` option lines.
func smtpSenderTOML(name, host string, port int, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n[senders.%s]\nplugin = \"smtp\"\n\n[senders.%s.options]\n", name, name)
	fmt.Fprintf(&b, "host = %q\nport = %d\ntls = \"none\"\ntimeout = \"10s\"\nhelo = \"campaignd.test\"\n", host, port)
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// closedPort returns a loopback port with nothing listening on it.
func closedPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return p
}
