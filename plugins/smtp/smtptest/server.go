// Package fakesmtp is a scriptable in-process SMTP server for the SMTP
// plugin's tests, built on github.com/emersion/go-smtp's server. It can
// answer any code at any stage (greeting, EHLO, STARTTLS, AUTH, MAIL, RCPT,
// DATA, end of DATA, RSET), drop the connection or stall there, require
// AUTH (PLAIN and LOGIN), speak STARTTLS or implicit TLS with a generated
// self-signed certificate, and it counts connections and records messages.
package smtptest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Stages a Fault can apply to.
const (
	Greeting  = "greeting"
	EHLO      = "ehlo"
	StartTLS  = "starttls"
	Auth      = "auth"
	Mail      = "mail"
	Rcpt      = "rcpt"
	Data      = "data"      // the DATA command, before 354
	DataBody  = "data_body" // while the message is being received (Drop only)
	EndOfData = "eod"       // the reply after the final dot
	Rset      = "rset"
)

// Fault scripts the server's behaviour at one stage.
type Fault struct {
	Stage string
	// Code, Enhanced and Text form the reply. Enhanced "" sends none.
	Code     int
	Enhanced string
	Text     string
	// Drop closes the connection instead of answering.
	Drop bool
	// Stall waits this long before answering (or dropping).
	Stall time.Duration
	// Times limits how often the fault fires; 0 means always.
	Times int
	// Rcpt restricts Rcpt/Data/EndOfData faults to one recipient.
	Rcpt string
}

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
	// Faults are the scripted faults at start (see SetFaults).
	Faults []Fault
	// SmallReceiveBuffer shrinks the kernel receive buffer of accepted
	// connections, so a client writing a large body blocks soon after the
	// server stops reading.
	SmallReceiveBuffer bool
}

// Message is one accepted message.
type Message struct {
	From   string // envelope sender (MAIL FROM)
	To     string // envelope recipient (RCPT TO)
	Data   []byte // the message as received, dot-unstuffed
	User   string // authenticated user, if any
	ConnID int    // number of the connection that carried it (1-based)
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
	messages  []Message
	commands  []string
	queued    int
}

// Start starts a server on 127.0.0.1:0.
func Start(opts Options) (*Server, error) {
	if opts.TLS == "" {
		opts.TLS = "none"
	}
	if opts.Mechanisms == nil {
		opts.Mechanisms = []string{sasl.Plain, sasl.Login}
	}
	s := &Server{opts: opts, done: make(chan struct{})}
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
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
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

// SetFaults replaces the scripted faults.
func (s *Server) SetFaults(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
	for i := range faults {
		f := faults[i]
		s.faults = append(s.faults, &f)
	}
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

// Active is the number of connections open now.
func (s *Server) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// Messages returns the accepted messages.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Commands returns the verbs received over plaintext, in order (commands
// sent after STARTTLS or over implicit TLS are not seen).
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

// fault returns the fault for stage (and recipient), consuming one use.
func (s *Server) fault(stage, rcpt string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.faults {
		if f.Stage != stage || (f.Rcpt != "" && f.Rcpt != rcpt) {
			continue
		}
		if f.Times < 0 {
			continue
		}
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				f.Times = -1 // used up
			}
		}
		return f
	}
	return nil
}

// stall waits d or until the server closes.
func (s *Server) stall(d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-time.After(d):
	case <-s.done:
	}
}

// line renders the reply line of f.
func (f *Fault) line() string {
	if f.Enhanced != "" {
		return fmt.Sprintf("%d %s %s\r\n", f.Code, f.Enhanced, f.Text)
	}
	return fmt.Sprintf("%d %s\r\n", f.Code, f.Text)
}

// smtpError renders f as the go-smtp error a backend returns.
func (f *Fault) smtpError() *smtp.SMTPError {
	ec := smtp.NoEnhancedCode
	if f.Enhanced != "" {
		var a, b, c int
		if _, err := fmt.Sscanf(f.Enhanced, "%d.%d.%d", &a, &b, &c); err == nil {
			ec = smtp.EnhancedCode{a, b, c}
		}
	}
	return &smtp.SMTPError{Code: f.Code, EnhancedCode: ec, Message: f.Text}
}

// errDropped is returned by backend hooks that closed the connection.
var errDropped = errors.New("smtptest: connection dropped")

// apply runs a backend-stage fault: stall, then drop or return the reply.
func (s *Server) apply(f *Fault, c *smtp.Conn) error {
	s.stall(f.Stall)
	if f.Drop {
		_ = c.Conn().Close()
		return errDropped
	}
	return f.smtpError()
}

// listener counts connections, wraps them for TLS and command
// interception, and answers greeting faults itself.
type listener struct {
	net.Listener
	s *Server
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		s := l.s
		s.mu.Lock()
		s.accepted++
		s.active++
		if s.active > s.maxActive {
			s.maxActive = s.active
		}
		id := s.accepted
		s.mu.Unlock()
		if tc, ok := raw.(*net.TCPConn); ok && s.opts.SmallReceiveBuffer {
			_ = tc.SetReadBuffer(4096)
		}
		var c net.Conn = &countedConn{Conn: raw, s: s, id: id}
		if s.opts.TLS == "implicit" {
			c = tls.Server(c, s.tlsCfg)
		}
		if f := s.fault(Greeting, ""); f != nil {
			go func() {
				s.stall(f.Stall)
				if !f.Drop {
					_, _ = io.WriteString(c, f.line())
				}
				_ = c.Close()
			}()
			continue
		}
		ic := &interceptConn{Conn: c, s: s, id: id}
		ic.br = bufio.NewReader(c)
		return ic, nil
	}
}

// countedConn keeps the active connection count.
type countedConn struct {
	net.Conn
	s    *Server
	id   int
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		c.s.active--
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

// interceptConn sits between the (plaintext view of the) socket and
// go-smtp's server: it logs command verbs and answers STARTTLS, DATA and
// RSET faults itself, since go-smtp's backend has no hook there. After
// STARTTLS it passes bytes through untouched.
type interceptConn struct {
	net.Conn
	s           *Server
	id          int
	br          *bufio.Reader
	pending     []byte
	passthrough bool
	inData      bool
}

func (c *interceptConn) Read(p []byte) (int, error) {
	for len(c.pending) == 0 {
		if c.passthrough {
			return c.br.Read(p)
		}
		line, err := c.br.ReadString('\n')
		if err != nil {
			if line != "" {
				c.pending = []byte(line)
				break
			}
			return 0, err
		}
		if c.inData {
			if line == ".\r\n" {
				c.inData = false
			}
			c.pending = []byte(line)
			break
		}
		verb := strings.ToUpper(strings.TrimSpace(strings.SplitN(line, " ", 2)[0]))
		c.s.mu.Lock()
		c.s.commands = append(c.s.commands, verb)
		c.s.mu.Unlock()
		stage := map[string]string{"STARTTLS": StartTLS, "DATA": Data, "RSET": Rset}[verb]
		if stage != "" {
			if f := c.s.fault(stage, ""); f != nil {
				c.s.stall(f.Stall)
				if f.Drop {
					_ = c.Conn.Close()
					return 0, io.EOF
				}
				if _, err := io.WriteString(c.Conn, f.line()); err != nil {
					return 0, err
				}
				continue // swallowed: go-smtp never sees it
			}
		}
		switch verb {
		case "STARTTLS":
			c.passthrough = true
		case "DATA":
			c.inData = true
		}
		c.pending = []byte(line)
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

type backend struct{ s *Server }

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	id := connID(c.Conn())
	if f := b.s.fault(EHLO, ""); f != nil {
		return nil, b.s.apply(f, c)
	}
	return &session{s: b.s, c: c, connID: id}, nil
}

// connID finds the id of the accepted connection under any wrapping.
func connID(c net.Conn) int {
	for {
		switch x := c.(type) {
		case *interceptConn:
			return x.id
		case *countedConn:
			return x.id
		case *tls.Conn:
			c = x.NetConn()
		default:
			return 0
		}
	}
}

type session struct {
	s      *Server
	c      *smtp.Conn
	connID int
	user   string
	from   string
	rcpts  []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Users == nil {
		return nil
	}
	return ss.s.opts.Mechanisms
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if f := ss.s.fault(Auth, ""); f != nil {
			return ss.s.apply(f, ss.c)
		}
		if want, ok := ss.s.opts.Users[user]; !ok || want != pass {
			return smtp.ErrAuthFailed
		}
		ss.user = user
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.RequireAuth && ss.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	if f := ss.s.fault(Mail, ""); f != nil {
		return ss.s.apply(f, ss.c)
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if f := ss.s.fault(Rcpt, to); f != nil {
		return ss.s.apply(f, ss.c)
	}
	ss.rcpts = append(ss.rcpts, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	rcpt := ""
	if len(ss.rcpts) > 0 {
		rcpt = ss.rcpts[0]
	}
	if f := ss.s.fault(DataBody, rcpt); f != nil {
		buf := make([]byte, 16)
		_, _ = io.ReadFull(r, buf)
		ss.s.stall(f.Stall)
		_ = ss.c.Conn().Close()
		return errDropped
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if f := ss.s.fault(EndOfData, rcpt); f != nil {
		return ss.s.apply(f, ss.c)
	}
	ss.s.mu.Lock()
	ss.s.queued++
	q := ss.s.queued
	for _, to := range ss.rcpts {
		ss.s.messages = append(ss.s.messages, Message{From: ss.from, To: to, Data: data, User: ss.user, ConnID: ss.connID})
	}
	ss.s.mu.Unlock()
	// go-smtp writes a returned *SMTPError's code verbatim, which is the
	// only way to choose the text of the final 250.
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: fmt.Sprintf("Ok: queued as Q%04d", q)}
}

func (ss *session) Reset() {
	ss.from = ""
	ss.rcpts = nil
}

func (ss *session) Logout() error { return nil }

// loginServer is the server side of AUTH LOGIN, which go-sasl dropped.
type loginServer struct {
	check func(user, pass string) error
	user  string
	step  int
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if response == nil {
			return []byte("Username:"), false, nil
		}
		l.user = string(response)
		l.step = 2
		return []byte("Password:"), false, nil
	case 1:
		l.user = string(response)
		l.step = 2
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(response))
	}
}

// SelfSignedTLS returns a server TLS config with a fresh self-signed ECDSA
// certificate for 127.0.0.1 and localhost.
func SelfSignedTLS() (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("smtptest: generate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "fakesmtp"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("smtptest: create certificate: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}, nil
}
