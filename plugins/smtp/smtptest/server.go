// Package smtptest is a scriptable in-process SMTP server for tests, built
// on github.com/emersion/go-smtp's server: the one SMTP fake of the smtp
// plugin's tests and of cmd/campaignd's end-to-end tests. It imports nothing
// of the project and is imported only from _test files.
//
// A Server records every message it accepts (envelope, raw data, parsed
// header, Message-ID) and counts copies per Message-ID. Faults make it answer
// any code at any stage (greeting, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA,
// end of DATA, RSET), drop the connection or stall there, for every message,
// for one recipient or only the first N times. It can require AUTH (PLAIN
// and LOGIN) and speak STARTTLS or implicit TLS with a generated self-signed
// certificate. A Lean server only counts, for benchmarks and load tests.
package smtptest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configure a Server.
type Options struct {
	// TLS is "none", "starttls" (advertise STARTTLS) or "implicit".
	TLS string
	// Users enables AUTH with these username -> password pairs; when
	// RequireAuth is set, MAIL before AUTH gets 530.
	Users       map[string]string
	RequireAuth bool
	// Mechanisms offered; default PLAIN and LOGIN.
	Mechanisms []string
	// SMTPUTF8 advertises SMTPUTF8.
	SMTPUTF8 bool
	// NoPipelining hides PIPELINING (RFC 2920), which go-smtp's server
	// always offers, from the EHLO reply over plaintext, so a client's
	// one-command-at-a-time path can be tested. No effect on a Lean server
	// or after STARTTLS.
	NoPipelining bool
	// Faults are the scripted faults at start (see SetFaults).
	Faults []Fault
	// SmallReceiveBuffer shrinks the kernel receive buffer of accepted
	// connections, so a client writing a large body blocks soon after the
	// server stops reading.
	SmallReceiveBuffer bool
	// ReplyDelay, when set, is asked for every message the server takes
	// and holds the reply after the final dot back that long, after the
	// message is recorded: it is delivered whether or not the client hears
	// back, the worst case for duplicates.
	ReplyDelay func() time.Duration
	// OnConnect, when set, is called with the number (1-based, as in
	// Message.ConnID) of each accepted connection and the connection itself
	// (for its addresses: it must not read, write or close it) before it is
	// greeted, so a test can find the process on the other end while it
	// still exists.
	OnConnect func(id int, conn net.Conn)
	// Lean makes a counting-only server for benchmarks and load tests: it
	// keeps no message, command or RCPT count, only Counts, and spends as
	// little as it can per message. Faults cannot be set on it.
	Lean bool
	// SizeHint is the number of distinct Message-IDs expected: the table
	// that counts copies is made that large up front.
	SizeHint int
	// ReadTimeout and WriteTimeout bound one read of a client command and
	// one reply (defaults 1 minute and 30 seconds).
	ReadTimeout, WriteTimeout time.Duration
}

// Server is a running fake SMTP server.
type Server struct {
	// Addr is the 127.0.0.1:port the server listens on.
	Addr string
	// Host and Port split Addr.
	Host string
	Port string

	opts   Options
	srv    *smtp.Server
	ln     net.Listener
	tlsCfg *tls.Config
	done   chan struct{}

	mu        sync.Mutex
	faults    []*Fault
	accepted  int
	active    int
	maxActive int
	stalling  int
	messages  []Message
	commands  []string
	rcpts     map[string]int // RCPT TO attempts per lower-cased address
	queued    int
	counts    Counts
	copies    map[uint64]uint8 // copies per Message-ID hash, capped at 255
	reads     atomic.Int64
}

// errLeanFaults is returned by Start for a Lean server given faults.
var errLeanFaults = errors.New("smtptest: a lean server takes no faults")

// Start starts a server on 127.0.0.1:0. It returns an error when the port
// cannot be opened, the TLS certificate cannot be made, or Lean is combined
// with Faults.
func Start(opts Options) (*Server, error) {
	if opts.Lean && len(opts.Faults) > 0 {
		return nil, errLeanFaults
	}
	if opts.TLS == "" {
		opts.TLS = "none"
	}
	if opts.Mechanisms == nil {
		opts.Mechanisms = []string{sasl.Plain, sasl.Login}
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = time.Minute
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	s := &Server{opts: opts, done: make(chan struct{}), rcpts: map[string]int{}, copies: make(map[uint64]uint8, opts.SizeHint)}
	for i := range opts.Faults {
		f := opts.Faults[i]
		s.faults = append(s.faults, &f)
	}
	if opts.TLS != "none" {
		cfg, err := SelfSignedTLS()
		if err != nil {
			return nil, err
		}
		s.tlsCfg = cfg
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("smtptest: listen: %w", err)
	}
	s.ln = ln
	s.Addr = ln.Addr().String()
	s.Host, s.Port, _ = net.SplitHostPort(s.Addr)

	s.srv = smtp.NewServer(&backend{s: s})
	s.srv.Domain = "fake.test"
	s.srv.AllowInsecureAuth = true
	s.srv.EnableSMTPUTF8 = opts.SMTPUTF8
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.ReadTimeout = opts.ReadTimeout
	s.srv.WriteTimeout = opts.WriteTimeout
	if opts.TLS == "starttls" {
		s.srv.TLSConfig = s.tlsCfg
	}
	go func() { _ = s.srv.Serve(&listener{Listener: ln, s: s}) }()
	return s, nil
}

// Close stops the server and every connection, and ends all stalls.
func (s *Server) Close() {
	select {
	case <-s.done:
		return
	default:
	}
	close(s.done)
	_ = s.srv.Close()
}

// Connections is the number of connections accepted so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// MaxActive is the largest number of connections open at once.
func (s *Server) MaxActive() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxActive
}

// Reads is the number of socket reads that returned data, over all
// connections and in any mode (TLS records included): how many separate
// writes of the clients the server had to take, a measure of round trips.
func (s *Server) Reads() int64 { return s.reads.Load() }

// Active is the number of connections open now.
func (s *Server) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// Commands returns the verbs received over plaintext, in order (commands
// sent after STARTTLS or over implicit TLS are not seen; a Lean server
// sees none).
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

// RcptAttempts is how many times RCPT TO was tried for addr (in any case),
// whatever the reply; 0 on a Lean server.
func (s *Server) RcptAttempts(addr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rcpts[strings.ToLower(addr)]
}

// Stalling is how many replies are being held back right now (by a fault's
// Stall or by ReplyDelay).
func (s *Server) Stalling() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stalling
}

// WaitStalling waits until at least n replies are held back at once. It
// returns an error naming how many were when timeout passed first.
func (s *Server) WaitStalling(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for s.Stalling() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("smtptest: %d replies stalled after %s, want %d", s.Stalling(), timeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// stall waits d or until the server closes, counted in Stalling.
func (s *Server) stall(d time.Duration) {
	if d <= 0 {
		return
	}
	s.mu.Lock()
	s.stalling++
	s.mu.Unlock()
	select {
	case <-time.After(d):
	case <-s.done:
	}
	s.mu.Lock()
	s.stalling--
	s.mu.Unlock()
}
