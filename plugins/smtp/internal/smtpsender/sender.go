// Package smtpsender is the SMTP sender behind the campaignd-sender-smtp
// plugin: option parsing, a pool of authenticated sessions reused across
// messages, and the classification of every SMTP reply into the sdk's
// error classes. It imports only the sdk and third-party libraries.
package smtpsender

import (
	"bytes"
	"context"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/campaignd/campaignd/sdk"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/net/idna"
)

// Version is the plugin version reported by Info.
var Version = "1.0.0"

// Sender is the SMTP sdk.Sender. The zero value is not usable: call New.
type Sender struct {
	log    hclog.Logger
	getenv func(string) string

	mu   sync.Mutex
	cfg  *Config
	pool *pool
}

// New returns an unconfigured Sender logging to log (nil for none).
func New(log hclog.Logger) *Sender {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Sender{log: log}
}

// SetGetenv replaces os.Getenv for the EMAIL_* fallbacks (tests).
func (s *Sender) SetGetenv(getenv func(string) string) { s.getenv = getenv }

// Configure validates the options and starts a fresh connection pool; a
// previous pool, if any, is closed (its in-flight sends finish first).
// Nothing is dialed here: an unreachable server shows up as transient send
// failures, not as a configuration error.
func (s *Sender) Configure(_ context.Context, options map[string]string) error {
	cfg, err := ParseOptions(options, s.getenv)
	if err != nil {
		return err
	}
	p := newPool(cfg, s.log)
	s.mu.Lock()
	old := s.pool
	s.cfg, s.pool = cfg, p
	s.mu.Unlock()
	if old != nil {
		old.close()
	}
	s.log.Debug("smtp configured", "addr", cfg.Addr(), "tls", cfg.TLS, "auth", cfg.Auth,
		"helo", cfg.Helo, "max_connections", cfg.MaxConnections, "timeout", cfg.Timeout)
	if d := cfg.DKIM; d != nil {
		s.log.Debug("smtp dkim signing", "domain", d.Domain, "selector", d.Selector, "algorithm", d.Algorithm)
	}
	return nil
}

// Info names the plugin and reports max_connections as MaxConcurrency: more
// concurrent sends than that would only wait for a connection. With DKIM
// configured, DNSRecords holds the TXT record that publishes the key.
func (s *Sender) Info(context.Context) (sdk.Info, error) {
	n := DefaultMaxConnections
	var d *DKIM
	s.mu.Lock()
	if s.cfg != nil {
		n, d = s.cfg.MaxConnections, s.cfg.DKIM
	}
	s.mu.Unlock()
	info := sdk.Info{Name: "smtp", Version: Version, MaxConcurrency: n, Options: knownOptions, SecretOptions: secretOptions}
	if d != nil {
		info.DNSRecords = []sdk.DNSRecord{d.Record()}
	}
	return info, nil
}

// Check implements sdk.Checker: it opens one session exactly as a send
// would (connect, greeting, EHLO, STARTTLS and the TLS handshake when tls
// is "starttls" or "implicit", AUTH when configured), then says QUIT. No
// mail is sent and the session is not pooled. A failure is the *sdk.Error
// a send would have met, classified the same way, its message naming the
// stage and the server, e.g. "connect smtp.example.com:587: connection
// refused: ..." or "AUTH smtp.example.com:587: authentication failed".
func (s *Sender) Check(ctx context.Context) error {
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	if cfg == nil {
		return sdk.ConfigError("smtp sender is not configured")
	}
	c, f := dial(ctx, cfg)
	if f != nil {
		e := *f.err
		if rest, ok := strings.CutPrefix(e.Message, string(f.stage)+": "); ok {
			e.Message = fmt.Sprintf("%s %s: %s", f.stage, cfg.Addr(), rest)
		} else {
			e.Message = cfg.Addr() + ": " + e.Message
		}
		return &e
	}
	c.guard.mu.Lock()
	c.guard.limit = stepDeadline(ctx, quitTimeout)
	c.guard.mu.Unlock()
	if err := c.client.Quit(); err != nil {
		_ = c.client.Close()
		ff := Classify(ctx, "QUIT", err)
		ff.err.Message = fmt.Sprintf("QUIT %s: %s", cfg.Addr(), strings.TrimPrefix(ff.err.Message, "QUIT: "))
		return ff.err
	}
	s.log.Debug("smtp check passed", "addr", cfg.Addr(), "tls", cfg.TLS, "auth", cfg.Auth)
	return nil
}

// Close closes every idle connection (QUIT) and makes in-flight ones close
// when their send ends. Send after Close fails with ClassConfig.
func (s *Sender) Close() error {
	s.mu.Lock()
	p := s.pool
	s.cfg, s.pool = nil, nil
	s.mu.Unlock()
	if p != nil {
		p.close()
	}
	return nil
}

// Stats reports how many connections the sender has dialed and how many
// are idle; for tests and debugging.
func (s *Sender) Stats() (dialed int64, idle int) {
	s.mu.Lock()
	p := s.pool
	s.mu.Unlock()
	if p == nil {
		return 0, 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dials.Load(), len(p.idle)
}

// Send delivers msg over a pooled session: MAIL FROM (msg.ReturnPath when
// set, a per-recipient VERP address, else the From address), RCPT TO (the
// To address), DATA (msg rendered by sdk.Message.WriteTo, with a
// DKIM-Signature in front when DKIM is configured; a From domain that
// dkim_domain does not align with is logged once, as a warning).
// Failures are *sdk.Error classified by ClassifyReply and Classify. A
// pooled session that fails on its first command (MAIL FROM) with a dropped
// connection or 421 had been closed by the server while idle: it is
// replaced transparently, since nothing was accepted yet.
func (s *Sender) Send(ctx context.Context, msg *sdk.Message) (*sdk.Receipt, error) {
	s.mu.Lock()
	p := s.pool
	s.mu.Unlock()
	if p == nil {
		return nil, sdk.ConfigError("smtp sender is not configured")
	}
	if msg == nil {
		return nil, sdk.Permanent("send: nil message")
	}
	from, err := mail.ParseAddress(msg.From)
	if err != nil {
		return nil, sdk.ConfigError("send: invalid From %q: %v", msg.From, err)
	}
	to, err := mail.ParseAddress(msg.To)
	if err != nil {
		return nil, sdk.Permanent("send: invalid To %q: %v", msg.To, err)
	}
	// The envelope sender is where bounces go: a VERP return path names
	// the recipient in it, so a bounce maps back even without headers.
	envFrom := from
	if msg.ReturnPath != "" {
		// The host renders it from one template for every message: a bad
		// one is the sender's configuration, not this recipient's fault.
		if envFrom, err = mail.ParseAddress(msg.ReturnPath); err != nil {
			return nil, sdk.ConfigError("send: invalid ReturnPath %q: %v", msg.ReturnPath, err)
		}
	}
	var data bytes.Buffer
	if _, err := msg.WriteTo(&data); err != nil {
		return nil, sdk.Permanent("send: %v", err)
	}
	env := envelope{from: smtpPath(envFrom.Address), to: smtpPath(to.Address), data: data.Bytes(), messageID: msg.MessageID}
	if d := p.cfg.DKIM; d != nil {
		if fromDomain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]; d.firstUnaligned(fromDomain) {
			p.log.Warn("dkim_domain does not align with the From domain: the message is signed, but DMARC will not count the signature for the From domain",
				"dkim_domain", d.Domain, "from_domain", fromDomain)
		}
		if env.signature, err = d.Sign(env.data); err != nil {
			// The message was just rendered by WriteTo: what fails here is
			// the key, and it would fail for every message.
			return nil, sdk.ConfigError("send: %v", err)
		}
	}
	if !isASCII(env.from) || !isASCII(env.to) {
		env.ascii = asciiEnvelope(msg, from, envFrom, to, p.cfg.DKIM)
	}

	if err := p.acquire(ctx); err != nil {
		return nil, err
	}
	defer p.release()

	// Each retry consumes (and closes) one stale idle session, so this ends
	// at the latest with a freshly dialed one (reused == false).
	for {
		c, reused, f := p.get(ctx)
		if f != nil {
			if f.err.Class == sdk.ClassConfig {
				p.log.Warn("smtp session setup refused: check the sender's options", "addr", p.cfg.Addr(), "stage", f.stage, "error", f.err)
			} else {
				p.log.Debug("smtp connect failed", "to", env.to, "stage", f.stage, "error", f.err)
			}
			return nil, f.err
		}
		r, f := p.deliver(ctx, c, env)
		if f == nil {
			p.log.Debug("smtp sent", "to", env.to, "conn", c.id, "provider_id", r.ProviderID)
			return r, nil
		}
		p.log.Debug("smtp send failed", "to", env.to, "conn", c.id, "stage", f.stage, "class", f.err.Class, "error", f.err)
		stale := reused && f.stage == StageMail && ctx.Err() == nil &&
			((f.broken && f.err.SMTPCode == 0) || f.err.SMTPCode == 421)
		if !stale {
			return nil, f.err
		}
		p.log.Debug("smtp idle connection was dropped by the server; redialing", "conn", c.id)
	}
}

type envelope struct {
	from, to string
	// signature is the DKIM-Signature field written in front of data;
	// nil when DKIM is not configured.
	signature []byte
	data      []byte
	messageID string
	// ascii is the same message with internationalised domains in their
	// A-label (punycode) form, for a server without SMTPUTF8; nil when the
	// addresses are ASCII already or a local part is not (no ASCII
	// spelling exists: only SMTPUTF8 can carry it).
	ascii *envelope
}

// asciiEnvelope is msg with the From, To and Reply-To domains in A-label
// form (RFC 5890), envelope and header alike, or nil when a From or To
// local part is not ASCII or a domain is not valid IDNA. A Reply-To that
// cannot be made ASCII is left as it is: it is a header, Q-encoded by no
// one, and a server without SMTPUTF8 usually passes 8-bit headers on. With
// d set the rendering is signed (its From differs); a signature that fails
// gives nil too, as the message of Send's own signing would have failed
// already.
func asciiEnvelope(msg *sdk.Message, from, envFrom, to *mail.Address, d *DKIM) *envelope {
	fromA, ok1 := aceAddress(from.Address)
	toA, ok2 := aceAddress(to.Address)
	envFromA, ok3 := aceAddress(envFrom.Address)
	if !ok1 || !ok2 || !ok3 {
		return nil
	}
	m := *msg
	m.From = (&mail.Address{Name: from.Name, Address: fromA}).String()
	m.To = (&mail.Address{Name: to.Name, Address: toA}).String()
	if rt, err := mail.ParseAddress(msg.ReplyTo); err == nil {
		if a, ok := aceAddress(rt.Address); ok {
			m.ReplyTo = (&mail.Address{Name: rt.Name, Address: a}).String()
		}
	}
	var data bytes.Buffer
	if _, err := m.WriteTo(&data); err != nil {
		return nil
	}
	env := &envelope{from: smtpPath(envFromA), to: smtpPath(toA), data: data.Bytes(), messageID: msg.MessageID}
	if d != nil {
		var err error
		if env.signature, err = d.Sign(env.data); err != nil {
			return nil
		}
	}
	return env
}

// aceAddress is addr with its domain in A-label form; ok is false when
// the local part is not ASCII or the domain is not valid IDNA.
func aceAddress(addr string) (string, bool) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 || !isASCII(addr[:at]) {
		return "", false
	}
	domain, err := idna.Lookup.ToASCII(addr[at+1:])
	if err != nil {
		return "", false
	}
	return addr[:at+1] + domain, true
}

// pool holds idle sessions. Open sessions (idle + busy) never exceed
// MaxConnections: a send holds one of MaxConnections permits while it uses
// a session, and dials only when no idle session is left.
type pool struct {
	cfg     *Config
	log     hclog.Logger
	permits chan struct{}
	dials   atomic.Int64
	ids     atomic.Uint64

	mu     sync.Mutex
	idle   []*conn // most recently used last
	closed bool
	done   chan struct{}
}

func newPool(cfg *Config, log hclog.Logger) *pool {
	p := &pool{
		cfg:     cfg,
		log:     log,
		permits: make(chan struct{}, cfg.MaxConnections),
		done:    make(chan struct{}),
	}
	go p.janitor()
	return p
}

// acquire waits for a permit or ctx.
func (p *pool) acquire(ctx context.Context) error {
	select {
	case p.permits <- struct{}{}:
		return nil
	case <-ctx.Done():
		return sdk.Transient("waiting for a free smtp connection: %v", ctx.Err())
	}
}

func (p *pool) release() { <-p.permits }

// get returns the most recently used idle session that has not idled past
// idle_timeout, or dials a new one.
func (p *pool) get(ctx context.Context) (*conn, bool, *failure) {
	var expired []*conn
	var c *conn
	p.mu.Lock()
	for len(p.idle) > 0 && c == nil {
		last := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if time.Since(last.lastUsed) > p.cfg.IdleTimeout {
			expired = append(expired, last)
			continue
		}
		c = last
	}
	p.mu.Unlock()
	for _, e := range expired {
		go e.close(true)
	}
	if c != nil {
		return c, true, nil
	}
	if ctx.Err() != nil {
		f := Classify(ctx, StageConnect, ctx.Err())
		return nil, false, &f
	}
	c, f := dial(ctx, p.cfg)
	if f != nil {
		return nil, false, f
	}
	p.dials.Add(1)
	c.id = p.ids.Add(1)
	p.log.Debug("smtp connection opened", "conn", c.id, "addr", p.cfg.Addr(), "tls", p.cfg.TLS)
	return c, false, nil
}

// put returns a healthy session to the pool, or closes it when the pool is
// closed.
func (p *pool) put(c *conn) {
	c.lastUsed = time.Now()
	p.mu.Lock()
	if !p.closed {
		p.idle = append(p.idle, c)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	c.close(true)
}

// discard closes a session whose state is unknown.
func (p *pool) discard(c *conn) {
	p.log.Debug("smtp connection closed", "conn", c.id)
	c.close(false)
}

// close closes idle sessions and stops the janitor; busy ones are closed
// by put when their send ends.
func (p *pool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	idle := p.idle
	p.idle = nil
	close(p.done)
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range idle {
		wg.Add(1)
		go func() { defer wg.Done(); c.close(true) }()
	}
	wg.Wait()
}

// janitor closes sessions that idled past idle_timeout, so the server's
// connection slots are not held for nothing between ticks.
func (p *pool) janitor() {
	period := p.cfg.IdleTimeout / 2
	if period < 50*time.Millisecond {
		period = 50 * time.Millisecond
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		var expired []*conn
		p.mu.Lock()
		keep := p.idle[:0]
		for _, c := range p.idle {
			if time.Since(c.lastUsed) > p.cfg.IdleTimeout {
				expired = append(expired, c)
			} else {
				keep = append(keep, c)
			}
		}
		for i := len(keep); i < len(p.idle); i++ {
			p.idle[i] = nil
		}
		p.idle = keep
		p.mu.Unlock()
		for _, c := range expired {
			p.log.Debug("smtp idle connection closed", "conn", c.id)
			c.close(true)
		}
	}
}

// deliver runs one transaction on c and decides c's fate: back to the pool
// after success or a clean per-message rejection (after RSET when a
// transaction was open), closed after anything that leaves its state
// unknown.
func (p *pool) deliver(ctx context.Context, c *conn, env envelope) (*sdk.Receipt, *failure) {
	release := c.guard.bind(ctx)
	receipt, f, open := p.transact(ctx, c, env)
	aborted := release()
	switch {
	case aborted:
		// ctx ended during the transaction: deadlines were forced into
		// the past, so the session is unusable whatever the outcome.
		p.discard(c)
		if f != nil {
			f.broken = true
		}
	case f != nil && f.broken:
		p.discard(c)
	case f != nil && open:
		if err := p.reset(ctx, c); err != nil {
			p.log.Debug("smtp RSET failed; closing connection", "conn", c.id, "error", err)
			p.discard(c)
		} else {
			p.put(c)
		}
	default:
		p.put(c)
	}
	return receipt, f
}

// localPart is addr up to its last @.
func localPart(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[:i]
	}
	return addr
}

// smtpPath is addr as it goes between the angle brackets of MAIL FROM and
// RCPT TO: net/mail hands out local parts unquoted, and "a>b"@x.org or
// "a b"@x.org unquoted would end the path early (a different mailbox, or
// text taken as ESMTP parameters), so a local part that needs quoting is
// quoted again.
func smtpPath(addr string) string {
	s := (&mail.Address{Address: addr}).String()
	return s[1 : len(s)-1]
}

var (
	queuedAsRe = regexp.MustCompile(`(?i)\bqueued as\s+([^\s;,]+)`)
	idEqRe     = regexp.MustCompile(`(?i)\bid=([^\s;,]+)`)
)

// providerID extracts the server's queue id from the final reply
// ("2.0.0 Ok: queued as 4Xyz" -> "4Xyz", Exim's "OK id=1abc-00"), falling
// back to the Message-ID.
func providerID(reply, messageID string) string {
	for _, re := range []*regexp.Regexp{queuedAsRe, idEqRe} {
		if m := re.FindStringSubmatch(reply); m != nil {
			if id := strings.TrimRight(m[1], ".)]"); id != "" {
				return id
			}
		}
	}
	return messageID
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
