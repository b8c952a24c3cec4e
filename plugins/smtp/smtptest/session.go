package smtptest

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

type backend struct{ s *Server }

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	if b.s.opts.Lean {
		return &leanSession{s: b.s}, nil
	}
	if f := b.s.fault(EHLO, ""); f != nil {
		if err := b.s.apply(f, c); err != nil {
			return nil, err
		}
	}
	return &session{s: b.s, c: c, connID: connID(c.Conn())}, nil
}

// session is the recording server's SMTP transaction.
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
			if err := ss.s.apply(f, ss.c); err != nil {
				return err
			}
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
		if err := ss.s.apply(f, ss.c); err != nil {
			return err
		}
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	ss.s.rcpts[strings.ToLower(to)]++
	ss.s.mu.Unlock()
	if f := ss.s.fault(Rcpt, to); f != nil {
		if err := ss.s.apply(f, ss.c); err != nil {
			return err
		}
	}
	ss.rcpts = append(ss.rcpts, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	if f := ss.s.faultFor(DataBody, ss.rcpts); f != nil {
		buf := make([]byte, 16)
		_, _ = io.ReadFull(r, buf)
		ss.s.stall(f.Stall)
		_ = ss.c.Conn().Close()
		return errDropped
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err // the client went away mid-DATA: not delivered
	}
	f := ss.s.faultFor(EndOfData, ss.rcpts)
	if f != nil && !f.takes() {
		return ss.s.apply(f, ss.c)
	}
	delay := ss.s.replyDelay()
	committed := delay > 0 || (f != nil && (f.Stall > 0 || f.Drop))
	q := ss.s.record(ss.from, ss.rcpts, data, ss.user, ss.connID, committed)
	ss.s.stall(delay)
	if f != nil {
		if err := ss.s.apply(f, ss.c); err != nil {
			return err
		}
	}
	// go-smtp writes a returned *SMTPError's code verbatim, which is the
	// only way to choose the text of the final 250.
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: fmt.Sprintf("Ok: queued as Q%04d", q)}
}

func (ss *session) Reset() {
	ss.from = ""
	ss.rcpts = nil
}

func (ss *session) Logout() error { return nil }

// replyDelay is Options.ReplyDelay's answer, 0 without one.
func (s *Server) replyDelay() time.Duration {
	if s.opts.ReplyDelay == nil {
		return 0
	}
	return s.opts.ReplyDelay()
}

// leanSession is the Lean server's transaction: it reads each message into
// one buffer it reuses and counts it by Message-ID, so a message costs no
// allocation of its own.
type leanSession struct {
	s   *Server
	buf bytes.Buffer
}

func (*leanSession) Reset()                               {}
func (*leanSession) Logout() error                        { return nil }
func (*leanSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*leanSession) Rcpt(string, *smtp.RcptOptions) error { return nil }

func (ls *leanSession) Data(r io.Reader) error {
	ls.buf.Reset()
	if _, err := ls.buf.ReadFrom(r); err != nil {
		return err
	}
	id := headerMessageID(ls.buf.Bytes())
	ls.s.mu.Lock()
	ls.s.count(len(id) > 0, idHash(id))
	ls.s.mu.Unlock()
	if d := ls.s.replyDelay(); d > 0 {
		ls.s.stall(d)
	}
	return nil // go-smtp's own 250: nothing to format
}

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
