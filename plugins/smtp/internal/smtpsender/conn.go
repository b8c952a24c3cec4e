package smtpsender

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/campaignd/campaignd/sdk"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// syntheticGreeting is fed to go-smtp's client as the server greeting. The
// real greeting (and, for STARTTLS, the first EHLO and STARTTLS itself) is
// read by dial, because go-smtp's client neither exposes STARTTLS after a
// custom HELO name nor tells a greeting failure from an EHLO failure. When
// go-smtp's client starts, the server is waiting for EHLO, exactly as after
// a greeting, so handing it this line keeps both in step.
const syntheticGreeting = "220 campaignd go-smtp handover\r\n"

// pastTime is a deadline that has already passed: setting it unblocks any
// pending read or write at once.
var pastTime = time.Unix(1, 0)

// quitTimeout bounds the polite QUIT when a session is closed.
const quitTimeout = 2 * time.Second

// guardedConn is the net.Conn go-smtp's client talks through. go-smtp sets a
// fresh deadline before every command (and clears it after); guardedConn
// turns "no deadline" into now+timeout, caps every deadline at the deadline
// of the Send using the connection and, once that Send's context is
// cancelled, forces all deadlines into the past so the pending and every
// later I/O fails immediately.
type guardedConn struct {
	net.Conn
	r io.Reader
	// timeout replaces "no deadline": go-smtp clears the deadline after
	// each command and sets none while the message body is written, so
	// without this a server that stops reading could block a Send forever.
	// In that state every Write renews it, so a large body on a slow but
	// moving link is not cut off: timeout bounds a stall, not the transfer.
	timeout time.Duration

	mu      sync.Mutex
	limit   time.Time // deadline of the current Send; zero when none
	aborted bool
	renew   bool // the caller asked for no deadline: renew it on each Write
}

func newGuardedConn(c net.Conn, prefix string, timeout time.Duration) *guardedConn {
	return &guardedConn{Conn: c, r: io.MultiReader(strings.NewReader(prefix), c), timeout: timeout}
}

// Read reads the synthetic greeting first, then the connection.
func (g *guardedConn) Read(p []byte) (int, error) { return g.r.Read(p) }

func (g *guardedConn) effective(t time.Time) time.Time {
	if g.aborted {
		return pastTime
	}
	if t.IsZero() && g.timeout > 0 {
		t = time.Now().Add(g.timeout)
	}
	if !g.limit.IsZero() && (t.IsZero() || t.After(g.limit)) {
		return g.limit
	}
	return t
}

// SetDeadline sets the deadline, capped by the current Send's context.
func (g *guardedConn) SetDeadline(t time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.renew = t.IsZero()
	return g.Conn.SetDeadline(g.effective(t))
}

// Write writes p, first renewing the write deadline when the caller set
// none (the message body).
func (g *guardedConn) Write(p []byte) (int, error) {
	g.mu.Lock()
	if g.renew {
		_ = g.Conn.SetWriteDeadline(g.effective(time.Time{}))
	}
	g.mu.Unlock()
	return g.Conn.Write(p)
}

// SetReadDeadline sets the read deadline, capped by the current Send's context.
func (g *guardedConn) SetReadDeadline(t time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.Conn.SetReadDeadline(g.effective(t))
}

// SetWriteDeadline sets the write deadline, capped by the current Send's context.
func (g *guardedConn) SetWriteDeadline(t time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.Conn.SetWriteDeadline(g.effective(t))
}

// bind ties the connection to ctx until the returned release is called.
// release reports whether ctx ended meanwhile; the connection's state is
// then unknown and it must be closed.
func (g *guardedConn) bind(ctx context.Context) (release func() (aborted bool)) {
	g.mu.Lock()
	if dl, ok := ctx.Deadline(); ok {
		g.limit = dl
	}
	g.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.aborted = true
		_ = g.Conn.SetDeadline(pastTime)
	})
	return func() bool {
		fired := !stop()
		g.mu.Lock()
		defer g.mu.Unlock()
		g.limit = time.Time{}
		return fired || g.aborted
	}
}

// conn is one SMTP session, greeted, secured and authenticated, ready for
// MAIL FROM. go-smtp's client sets the session up (EHLO, AUTH) and ends it
// (QUIT); the transactions (MAIL, RCPT, DATA, RSET) go over wire, on the
// same guarded connection, because go-smtp's client cannot pipeline and
// writes every command and every 4 KiB of a body separately. The two never
// read at the same time and the dialogue is in step between them: each
// leaves no reply unread.
type conn struct {
	client   *smtp.Client
	guard    *guardedConn
	wire     *wire
	utf8     bool // server offers SMTPUTF8
	id       uint64
	lastUsed time.Time
}

// close ends the session politely when it can, with a short deadline.
func (c *conn) close(polite bool) {
	if polite {
		c.guard.mu.Lock()
		c.guard.limit = time.Now().Add(quitTimeout)
		c.guard.mu.Unlock()
		if err := c.client.Quit(); err == nil {
			return
		}
	}
	_ = c.client.Close()
}

// stepDeadline is now+timeout, capped by ctx's deadline.
func stepDeadline(ctx context.Context, timeout time.Duration) time.Time {
	d := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(d) {
		return dl
	}
	return d
}

// dial opens, greets, secures and authenticates a new session. Every
// failure is classified at the stage it happened.
func dial(ctx context.Context, cfg *Config) (c *conn, f *failure) {
	d := net.Dialer{Timeout: cfg.Timeout}
	raw, err := d.DialContext(ctx, "tcp", cfg.Addr())
	if err != nil {
		ff := Classify(ctx, StageConnect, err)
		return nil, &ff
	}
	// Until the session is handed to go-smtp, cancellation closes the
	// socket, which unblocks whatever step is running.
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	defer func() {
		if !stop() && f == nil {
			// ctx ended just as setup finished: the socket is closed.
			ff := Classify(ctx, StageConnect, ctx.Err())
			c, f = nil, &ff
		}
		if f != nil {
			_ = raw.Close()
		}
	}()
	fail := func(stage Stage, err error) (*conn, *failure) {
		ff := Classify(ctx, stage, err)
		return nil, &ff
	}

	tlsConfig := &tls.Config{
		ServerName:         cfg.Host,
		InsecureSkipVerify: cfg.InsecureSkipVerify, //nolint:gosec // opt-in, documented as for tests
		MinVersion:         tls.VersionTLS12,
	}
	var base = raw
	if cfg.TLS == TLSImplicit {
		tc := tls.Client(raw, tlsConfig)
		_ = raw.SetDeadline(stepDeadline(ctx, cfg.Timeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(StageTLS, err)
		}
		base = tc
	}

	tp := textproto.NewConn(base)
	_ = raw.SetDeadline(stepDeadline(ctx, cfg.Timeout))
	if _, _, err := tp.ReadResponse(220); err != nil {
		return fail(StageGreeting, err)
	}

	if cfg.TLS == TLSStartTLS {
		if err := tp.PrintfLine("EHLO %s", cfg.Helo); err != nil {
			return fail(StageEHLO, err)
		}
		_ = raw.SetDeadline(stepDeadline(ctx, cfg.Timeout))
		_, msg, err := tp.ReadResponse(250)
		if err != nil {
			return fail(StageEHLO, err)
		}
		if !hasExtension(msg, "STARTTLS") {
			return nil, &failure{stage: StageSTARTTLS, broken: true,
				err: sdk.ConfigError("%s: tls = \"starttls\" but %s does not offer STARTTLS; use tls = \"implicit\" if it expects TLS from the start, or tls = \"none\" for a plaintext relay", StageSTARTTLS, cfg.Addr())}
		}
		if err := tp.PrintfLine("STARTTLS"); err != nil {
			return fail(StageSTARTTLS, err)
		}
		_ = raw.SetDeadline(stepDeadline(ctx, cfg.Timeout))
		if _, _, err := tp.ReadResponse(220); err != nil {
			return fail(StageSTARTTLS, err)
		}
		if tp.R.Buffered() > 0 {
			// Data sent before the TLS handshake could be injected by a
			// man in the middle (CVE-2011-0411 class): refuse it.
			return nil, &failure{stage: StageSTARTTLS, broken: true,
				err: sdk.Transient("%s: server sent data before the TLS handshake", StageSTARTTLS)}
		}
		tc := tls.Client(raw, tlsConfig)
		_ = raw.SetDeadline(stepDeadline(ctx, cfg.Timeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(StageTLS, err)
		}
		base = tc
	} else if tp.R.Buffered() > 0 {
		return nil, &failure{stage: StageGreeting, broken: true,
			err: sdk.Transient("%s: server sent data before EHLO", StageGreeting)}
	}
	_ = raw.SetDeadline(time.Time{})

	guard := newGuardedConn(base, syntheticGreeting, cfg.Timeout)
	client := smtp.NewClient(guard)
	client.CommandTimeout = cfg.Timeout
	client.SubmissionTimeout = cfg.Timeout
	// go-smtp sets its own per-command deadlines; cap them by ctx as well
	// while the session is being set up.
	release := guard.bind(ctx)
	defer release()

	if err := client.Hello(cfg.Helo); err != nil {
		return fail(StageEHLO, err)
	}
	if cfg.Auth != AuthNone {
		if ok, _ := client.Extension("AUTH"); !ok {
			return nil, &failure{stage: StageAuth, broken: true,
				err: sdk.ConfigError("%s: username is set but %s does not offer AUTH (over %s); set auth = \"none\" or check tls", StageAuth, cfg.Addr(), cfg.TLS)}
		}
		mech := strings.ToUpper(cfg.Auth)
		if !client.SupportsAuth(mech) {
			_, offered := client.Extension("AUTH")
			return nil, &failure{stage: StageAuth, broken: true,
				err: sdk.ConfigError("%s: server offers AUTH %s, not %s; set the auth option accordingly", StageAuth, offered, mech)}
		}
		var sc sasl.Client
		if cfg.Auth == AuthLogin {
			sc = &loginClient{username: cfg.Username, password: cfg.Password}
		} else {
			sc = sasl.NewPlainClient("", cfg.Username, cfg.Password)
		}
		if err := client.Auth(sc); err != nil {
			ff := Classify(ctx, StageAuth, err)
			if ff.err.SMTPCode == 0 && ctx.Err() == nil && !isNetErr(err) {
				// A SASL exchange gone wrong, not an I/O failure.
				ff.err = sdk.ConfigError("%s: %v", StageAuth, err)
			}
			ff.broken = true
			return nil, &ff
		}
	}
	utf8, _ := client.Extension("SMTPUTF8")
	return &conn{client: client, guard: guard, wire: newWire(guard, client), utf8: utf8, lastUsed: time.Now()}, nil
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// hasExtension reports whether an EHLO reply lists ext.
func hasExtension(ehlo, ext string) bool {
	lines := strings.Split(ehlo, "\n")
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) > 0 && strings.EqualFold(f[0], ext) {
			return true
		}
	}
	return false
}

// loginClient is the LOGIN SASL mechanism. Unlike go-sasl's, it sends no
// initial response and answers the server's prompts by their meaning
// ("Username:" / "Password:", any case), which is what servers in the
// wild need; unknown prompts get the username first, then the password.
type loginClient struct {
	username, password string
	step               int
}

// Start begins AUTH LOGIN without an initial response.
func (a *loginClient) Start() (string, []byte, error) { return sasl.Login, nil, nil }

// Next answers one server prompt.
func (a *loginClient) Next(challenge []byte) ([]byte, error) {
	a.step++
	c := strings.ToLower(string(challenge))
	switch {
	case strings.Contains(c, "pass"):
		return []byte(a.password), nil
	case strings.Contains(c, "user"):
		return []byte(a.username), nil
	case a.step == 1:
		return []byte(a.username), nil
	case a.step == 2:
		return []byte(a.password), nil
	}
	return nil, errors.New("unexpected AUTH LOGIN prompt")
}
