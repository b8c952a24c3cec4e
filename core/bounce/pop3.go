package bounce

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// TLSMode says how a POP3 session is secured.
type TLSMode string

// TLS modes.
const (
	TLSImplicit TLSMode = "tls"      // TLS from the first byte (port 995)
	TLSStartTLS TLSMode = "starttls" // plain, then STLS (RFC 2595; port 110)
	TLSNone     TLSMode = "none"     // plain text: only for a server on this host
)

// Defaults of a Config's zero fields.
const (
	DefaultTimeout         = 30 * time.Second
	DefaultMaxMessageBytes = 10 << 20
)

// Config says how to reach and log in to a POP3 mailbox.
type Config struct {
	Host     string
	Port     int
	TLS      TLSMode
	Username string
	Password string
	// Timeout bounds the connection and each command; 0 is DefaultTimeout.
	Timeout time.Duration
	// MaxMessageBytes is the largest message fetched; larger ones are left
	// in the mailbox. 0 is DefaultMaxMessageBytes.
	MaxMessageBytes int64
	// TLSConfig overrides the TLS client configuration (tests); nil
	// verifies the server's certificate for Host against the system roots.
	TLSConfig *tls.Config
}

func (c Config) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func (c Config) maxBytes() int64 {
	if c.MaxMessageBytes > 0 {
		return c.MaxMessageBytes
	}
	return DefaultMaxMessageBytes
}

// Addr is host:port.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// Client is one POP3 session (RFC 1939). It is not safe for concurrent
// use. Deletions (Dele) take effect only at a successful Quit.
type Client struct {
	conn    net.Conn
	tp      *textproto.Conn
	timeout time.Duration
	stop    func() bool // ends the watch on Dial's ctx
}

// ErrServer is in the chain of an error the server answered with -ERR.
var ErrServer = errors.New("pop3 server said -ERR")

// Dial connects to the mailbox, secures the session as cfg.TLS says
// (STLS for starttls), and logs in with USER and PASS. Each step is
// bounded by cfg's timeout, and the whole session by ctx: ending ctx
// closes the connection. Errors say which step failed and never carry the
// password; a rejected login wraps ErrServer.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if strings.ContainsAny(cfg.Username+cfg.Password, "\r\n") {
		return nil, errors.New("pop3: username and password must not contain CR or LF")
	}
	d := net.Dialer{Timeout: cfg.timeout()}
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr())
	if err != nil {
		return nil, fmt.Errorf("pop3: connect %s: %w", cfg.Addr(), err)
	}
	tlsConf := cfg.TLSConfig
	if tlsConf == nil {
		tlsConf = &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	}
	if cfg.TLS == TLSImplicit {
		tc := tls.Client(conn, tlsConf)
		tc.SetDeadline(time.Now().Add(cfg.timeout()))
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("pop3: tls handshake with %s: %w", cfg.Addr(), err)
		}
		conn = tc
	}
	c := &Client{timeout: cfg.timeout()}
	c.setConn(conn)
	// Closing the connection Dial opened ends a TLS session over it too.
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	c.stop = context.AfterFunc(ctx, func() { raw.Close() })
	fail := func(err error) (*Client, error) {
		c.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (%v)", err, ctx.Err())
		}
		return nil, err
	}
	if _, err := c.reply("greeting"); err != nil {
		return fail(err)
	}
	if cfg.TLS == TLSStartTLS {
		if _, err := c.cmd("STLS", "STLS"); err != nil {
			return fail(fmt.Errorf("%w (tls = \"starttls\" needs a server that offers STLS)", err))
		}
		tc := tls.Client(c.conn, tlsConf)
		tc.SetDeadline(time.Now().Add(c.timeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(fmt.Errorf("pop3: STLS handshake with %s: %w", cfg.Addr(), err))
		}
		c.setConn(tc)
	}
	if _, err := c.cmd("USER", "USER %s", cfg.Username); err != nil {
		return fail(err)
	}
	if _, err := c.cmd("PASS", "PASS %s", cfg.Password); err != nil {
		return fail(err)
	}
	return c, nil
}

func (c *Client) setConn(conn net.Conn) {
	c.conn = conn
	c.tp = textproto.NewConn(conn)
}

// cmd sends one command and reads its one-line reply; name is what
// errors call the command (never the arguments: PASS carries a secret).
func (c *Client) cmd(name, format string, args ...any) (string, error) {
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	if err := c.tp.PrintfLine(format, args...); err != nil {
		return "", fmt.Errorf("pop3: %s: %w", name, err)
	}
	return c.reply(name)
}

// reply reads a "+OK text" or "-ERR text" line.
func (c *Client) reply(name string) (string, error) {
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	line, err := c.tp.ReadLine()
	if err != nil {
		return "", fmt.Errorf("pop3: %s: %w", name, err)
	}
	switch {
	case strings.HasPrefix(line, "+OK"):
		return strings.TrimSpace(line[3:]), nil
	case strings.HasPrefix(line, "-ERR"):
		return "", fmt.Errorf("pop3: %s: %w: %s", name, ErrServer, strings.TrimSpace(line[4:]))
	}
	return "", fmt.Errorf("pop3: %s: unexpected reply %q", name, clip(line))
}

// Stat returns the number of messages in the mailbox and their size.
func (c *Client) Stat() (count int, size int64, err error) {
	text, err := c.cmd("STAT", "STAT")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(text)
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("pop3: STAT: malformed reply %q", clip(text))
	}
	count, err1 := strconv.Atoi(f[0])
	size, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || count < 0 {
		return 0, 0, fmt.Errorf("pop3: STAT: malformed reply %q", clip(text))
	}
	return count, size, nil
}

// Entry is one message of a LIST: its number in this session and size.
type Entry struct {
	Num  int
	Size int64
	UID  string // from UIDL; "" when the server has none
}

// List returns every message with its size (LIST) and, when the server
// supports UIDL, its unique id.
func (c *Client) List() ([]Entry, error) {
	lines, err := c.multi("LIST", "LIST")
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(lines))
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 2 {
			return nil, fmt.Errorf("pop3: LIST: malformed line %q", clip(l))
		}
		n, err1 := strconv.Atoi(f[0])
		size, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || n < 1 {
			return nil, fmt.Errorf("pop3: LIST: malformed line %q", clip(l))
		}
		out = append(out, Entry{Num: n, Size: size})
	}
	lines, err = c.multi("UIDL", "UIDL")
	if errors.Is(err, ErrServer) {
		return out, nil // UIDL is optional (RFC 1939)
	}
	if err != nil {
		return nil, err
	}
	uids := make(map[int]string, len(lines))
	for _, l := range lines {
		if f := strings.Fields(l); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				uids[n] = f[1]
			}
		}
	}
	for i := range out {
		out[i].UID = uids[out[i].Num]
	}
	return out, nil
}

// multi sends a command whose +OK is followed by lines ending in ".".
func (c *Client) multi(name, format string, args ...any) ([]string, error) {
	if _, err := c.cmd(name, format, args...); err != nil {
		return nil, err
	}
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	lines, err := c.tp.ReadDotLines()
	if err != nil {
		return nil, fmt.Errorf("pop3: %s: %w", name, err)
	}
	return lines, nil
}

// ErrTooLarge is in the chain of Retr's error for a message over the
// limit; the session stays usable.
var ErrTooLarge = errors.New("message too large")

// Retr fetches message n with dot-stuffing undone and its CRLF line ends
// turned into LF (textproto's DotReader does both; the parser reads
// either). A message over max bytes is read to its end and dropped
// (ErrTooLarge).
func (c *Client) Retr(n int, max int64) ([]byte, error) {
	name := "RETR " + strconv.Itoa(n)
	if _, err := c.cmd(name, "RETR %d", n); err != nil {
		return nil, err
	}
	// The whole message is bounded by the timeout per 1 MiB: a slow but
	// moving transfer of a big message is not cut off.
	c.conn.SetDeadline(time.Now().Add(c.timeout * time.Duration(1+max>>20)))
	dr := c.tp.DotReader()
	b, err := io.ReadAll(io.LimitReader(dr, max+1))
	if err == nil && int64(len(b)) > max {
		if _, err = io.Copy(io.Discard, dr); err == nil {
			return nil, fmt.Errorf("pop3: %s: %w (over %d bytes)", name, ErrTooLarge, max)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("pop3: %s: %w", name, err)
	}
	return b, nil
}

// Dele marks message n for deletion at Quit.
func (c *Client) Dele(n int) error {
	_, err := c.cmd("DELE "+strconv.Itoa(n), "DELE %d", n)
	return err
}

// Quit ends the session, which commits the deletions, and closes the
// connection. An error means the deletions may not have happened.
func (c *Client) Quit() error {
	_, err := c.cmd("QUIT", "QUIT")
	c.Close()
	return err
}

// Close drops the connection without QUIT: deletions are discarded.
func (c *Client) Close() error {
	if c.stop != nil {
		c.stop()
	}
	return c.conn.Close()
}
