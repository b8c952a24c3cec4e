package main_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Sink is an in-process SMTP server (emersion/go-smtp) for end-to-end tests
// of the built binaries: it records every message it accepts and can be
// programmed to answer RCPT TO or the end of DATA with any reply, to stall
// before answering, or to drop the connection — for every message, for one
// address, or only the first N times (4xx-then-success).
type Sink struct {
	t    testing.TB
	Host string
	Port int

	srv  *smtp.Server
	ln   net.Listener
	done chan struct{}

	mu       sync.Mutex
	rules    []*SinkRule
	msgs     []SinkMessage
	rcpts    map[string]int // RCPT TO attempts per address
	stalling int            // replies being held back right now
	conns    int
}

// Stages a SinkRule applies to.
const (
	SinkRcpt = "rcpt" // the reply to RCPT TO
	SinkData = "data" // the reply after the final dot (the message was read)
)

// SinkRule scripts the reply at one stage.
type SinkRule struct {
	Stage string
	// Addr limits the rule to one recipient address ("" = any).
	Addr string
	// Times limits how often the rule fires (0 = always); a rule that has
	// fired Times times no longer matches, so {Code: 451, Times: 1} is a
	// 4xx-then-success.
	Times int
	// Code, Enhanced ("5.1.1", "" for none) and Text form the reply. Code 0
	// means success (after Stall, if any).
	Code     int
	Enhanced string
	Text     string
	// Stall holds the reply back this long (cut short when the sink closes).
	Stall time.Duration
	// Drop closes the connection instead of replying.
	Drop bool

	fired int
}

// SinkMessage is one accepted message.
type SinkMessage struct {
	From, To  string // envelope
	MessageID string // the Message-ID header, with angle brackets
	Subject   string
	Header    mail.Header
	Body      string // raw body as received (quoted-printable not decoded)
	Raw       []byte
	// Committed is set for a message that was recorded before a stalled
	// or dropped reply: the server had the whole message, the client
	// never learned it.
	Committed bool
}

// NewSink starts a sink on a free loopback port; it stops at test cleanup.
func NewSink(t testing.TB, rules ...SinkRule) *Sink {
	t.Helper()
	s := &Sink{t: t, rcpts: map[string]int{}, done: make(chan struct{})}
	for i := range rules {
		s.rules = append(s.rules, &rules[i])
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sink: listen: %v", err)
	}
	s.ln = ln
	s.Host = "127.0.0.1"
	s.Port = ln.Addr().(*net.TCPAddr).Port
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		s.mu.Lock()
		s.conns++
		s.mu.Unlock()
		return &sinkSession{s: s, c: c}, nil
	}))
	s.srv.Domain = "sink.test"
	s.srv.AllowInsecureAuth = true
	s.srv.ErrorLog = silentLog{}
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = 10 * time.Second
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(s.Close)
	return s
}

// Close stops the sink and cuts any stall short.
func (s *Sink) Close() {
	select {
	case <-s.done:
		return
	default:
	}
	close(s.done)
	_ = s.srv.Close()
}

// Addr is host:port.
func (s *Sink) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// SenderTOML is a [senders.NAME] table for the smtp plugin pointing here.
func (s *Sink) SenderTOML(name string, extra ...string) string {
	return smtpSenderTOML(name, s.Host, s.Port, extra...)
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

// AddRule appends a rule; rules are tried in order, first match wins.
func (s *Sink) AddRule(r SinkRule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, &r)
}

// ClearRules removes every rule: from now on everything is accepted.
func (s *Sink) ClearRules() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
}

// Messages returns the accepted messages in arrival order.
func (s *Sink) Messages() []SinkMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SinkMessage(nil), s.msgs...)
}

// Received counts accepted messages per envelope recipient.
func (s *Sink) Received() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]int{}
	for _, msg := range s.msgs {
		m[msg.To]++
	}
	return m
}

// RcptAttempts is how many times RCPT TO was tried for addr.
func (s *Sink) RcptAttempts(addr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rcpts[strings.ToLower(addr)]
}

// Stalling is how many replies are being held back right now.
func (s *Sink) Stalling() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stalling
}

// WaitStalling waits until at least n replies are held back.
func (s *Sink) WaitStalling(n int, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for s.Stalling() < n {
		if time.Now().After(deadline) {
			s.t.Fatalf("sink: %d replies stalled after %s, want %d", s.Stalling(), timeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// match returns the first rule for stage and addr that may still fire, and
// counts the firing.
func (s *Sink) match(stage, addr string) *SinkRule {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rules {
		if r.Stage != stage || (r.Addr != "" && !strings.EqualFold(r.Addr, addr)) {
			continue
		}
		if r.Times > 0 && r.fired >= r.Times {
			continue
		}
		r.fired++
		cp := *r
		return &cp
	}
	return nil
}

// apply carries out a rule: stall, then drop or reply. It returns nil for
// a success reply.
func (s *Sink) apply(r *SinkRule, c *smtp.Conn) error {
	if r.Stall > 0 {
		s.mu.Lock()
		s.stalling++
		s.mu.Unlock()
		select {
		case <-time.After(r.Stall):
		case <-s.done:
		}
		s.mu.Lock()
		s.stalling--
		s.mu.Unlock()
	}
	if r.Drop {
		_ = c.Conn().Close()
		return errors.New("sink: connection dropped")
	}
	if r.Code == 0 {
		return nil
	}
	e := &smtp.SMTPError{Code: r.Code, Message: r.Text, EnhancedCode: smtp.NoEnhancedCode}
	if r.Enhanced != "" {
		parts := strings.Split(r.Enhanced, ".")
		if len(parts) == 3 {
			for i, p := range parts {
				e.EnhancedCode[i], _ = strconv.Atoi(p)
			}
		}
	}
	if e.Message == "" {
		e.Message = "sink says no"
	}
	return e
}

type sinkSession struct {
	s    *Sink
	c    *smtp.Conn
	from string
	to   []string
}

func (ss *sinkSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *sinkSession) Logout() error { return nil }

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	ss.s.rcpts[strings.ToLower(to)]++
	ss.s.mu.Unlock()
	if r := ss.s.match(SinkRcpt, to); r != nil {
		if err := ss.s.apply(r, ss.c); err != nil {
			return err
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	var rule *SinkRule
	for _, to := range ss.to {
		if rule = ss.s.match(SinkData, to); rule != nil {
			break
		}
	}
	record := func(committed bool) {
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		msg := SinkMessage{From: ss.from, Raw: raw, Committed: committed}
		if err == nil {
			body, _ := io.ReadAll(m.Body)
			msg.Header, msg.Body = m.Header, string(body)
			msg.MessageID = m.Header.Get("Message-Id")
			msg.Subject, _ = mimeWordDecoder.DecodeHeader(m.Header.Get("Subject"))
		}
		ss.s.mu.Lock()
		defer ss.s.mu.Unlock()
		for _, to := range ss.to {
			msg.To = strings.ToLower(to)
			ss.s.msgs = append(ss.s.msgs, msg)
		}
	}
	if rule == nil {
		record(false)
		return nil
	}
	if rule.Code == 0 && (rule.Stall > 0 || rule.Drop) {
		// The server has the whole message: like a real MTA after the
		// final dot, it is delivered whether or not the client hears
		// the reply (the worst case for duplicates).
		record(true)
		return ss.s.apply(rule, ss.c)
	}
	if err := ss.s.apply(rule, ss.c); err != nil {
		return err
	}
	record(false)
	return nil
}

var mimeWordDecoder = &mime.WordDecoder{}

type silentLog struct{}

func (silentLog) Printf(string, ...any) {}
func (silentLog) Println(...any)        {}

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
