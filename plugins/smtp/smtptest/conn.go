package smtptest

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

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
		if s.opts.OnConnect != nil {
			s.opts.OnConnect(id, raw)
		}
		if tc, ok := raw.(*net.TCPConn); ok && s.opts.SmallReceiveBuffer {
			_ = tc.SetReadBuffer(4096)
		}
		var c net.Conn = &countedConn{Conn: raw, s: s, id: id}
		if s.opts.TLS == "implicit" {
			c = tls.Server(c, s.tlsCfg)
		}
		if s.opts.Lean {
			return c, nil // no faults, no command log: nothing to intercept
		}
		ic := &interceptConn{Conn: c, s: s, id: id}
		if f := s.fault(Greeting, ""); f != nil {
			if f.Code == 0 && !f.Drop {
				ic.greetStall = f.Stall // go-smtp writes the greeting in the connection's own goroutine
			} else {
				go func() {
					s.stall(f.Stall)
					if !f.Drop {
						_, _ = io.WriteString(c, f.line())
					}
					_ = c.Close()
				}()
				continue
			}
		}
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

// Read counts the socket reads that returned data: with a client that
// pipelines, MAIL, RCPT and DATA arrive in one.
func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.s.reads.Add(1)
	}
	return n, err
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
// go-smtp's server: it logs command verbs and answers greeting, STARTTLS,
// DATA and RSET faults itself, since go-smtp's backend has no hook there.
// After STARTTLS it passes bytes through untouched.
type interceptConn struct {
	net.Conn
	s           *Server
	id          int
	br          *bufio.Reader
	pending     []byte
	passthrough bool
	inData      bool
	// dataAsked: DATA was passed to go-smtp and its reply is not written
	// yet; only a 354 starts the message body (a pipelining client sends
	// DATA even when its RCPT was refused, and go-smtp then refuses DATA).
	dataAsked  bool
	greetStall time.Duration
	greeted    bool
}

// Write holds the greeting (the first write) back by a Code 0 greeting
// fault's Stall, hides PIPELINING from the EHLO reply when NoPipelining is
// set (go-smtp writes each reply line in its own Write), and notes the
// reply to DATA.
func (c *interceptConn) Write(p []byte) (int, error) {
	if !c.greeted {
		c.greeted = true
		c.s.stall(c.greetStall)
	}
	if c.s.opts.NoPipelining && !c.passthrough && string(p) == "250-PIPELINING\r\n" {
		return len(p), nil
	}
	if c.dataAsked {
		c.dataAsked = false
		c.inData = strings.HasPrefix(string(p), "354")
	}
	return c.Conn.Write(p)
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
				if f.Code != 0 {
					if _, err := io.WriteString(c.Conn, f.line()); err != nil {
						return 0, err
					}
					continue // swallowed: go-smtp never sees it
				}
			}
		}
		switch verb {
		case "STARTTLS":
			c.passthrough = true
		case "DATA":
			c.dataAsked = true
		}
		c.pending = []byte(line)
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
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
