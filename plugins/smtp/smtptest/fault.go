package smtptest

import (
	"errors"
	"fmt"
	"strings"
	"time"

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
//
// Code 0 means no reply of the fault's own: after Stall the stage goes on
// as if there were no fault (unless Drop). At EndOfData a fault with Code 0
// or 2xx takes the message: it is recorded first (Committed when the reply
// is stalled or dropped), like a real MTA that has the whole message
// whether or not the client hears the reply. Any other code is the reply
// verbatim, 2xx included at the other stages (so a 250 at RCPT does not
// add the recipient).
type Fault struct {
	Stage string
	// Code, Enhanced ("5.1.1"; "" sends none) and Text form the reply.
	Code     int
	Enhanced string
	Text     string
	// Drop closes the connection instead of answering.
	Drop bool
	// Stall waits this long before answering (or dropping); Close cuts it
	// short.
	Stall time.Duration
	// Times limits how often the fault fires; 0 means always, so
	// {Code: 451, Times: 1} is a 4xx-then-success.
	Times int
	// Rcpt restricts Rcpt, DataBody and EndOfData faults to one recipient
	// (compared in any case); "" matches any.
	Rcpt string
}

// SetFaults replaces the scripted faults; with none, everything is
// accepted from now on. It has no effect on a Lean server.
func (s *Server) SetFaults(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
	for i := range faults {
		f := faults[i]
		s.faults = append(s.faults, &f)
	}
}

// fault returns the fault for stage (and recipient), consuming one use.
func (s *Server) fault(stage, rcpt string) *Fault {
	if s.opts.Lean {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.faults {
		if f.Stage != stage || (f.Rcpt != "" && !strings.EqualFold(f.Rcpt, rcpt)) {
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

// faultFor returns the first fault for stage that matches one of rcpts.
func (s *Server) faultFor(stage string, rcpts []string) *Fault {
	for _, to := range rcpts {
		if f := s.fault(stage, to); f != nil {
			return f
		}
	}
	return nil
}

// takes reports whether f at EndOfData lets the server keep the message.
func (f *Fault) takes() bool {
	return f.Code == 0 || (f.Code >= 200 && f.Code < 300)
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

// apply runs a backend-stage fault: stall, then drop, go on (Code 0: nil)
// or return the reply.
func (s *Server) apply(f *Fault, c *smtp.Conn) error {
	s.stall(f.Stall)
	if f.Drop {
		_ = c.Conn().Close()
		return errDropped
	}
	if f.Code == 0 {
		return nil
	}
	return f.smtpError()
}
