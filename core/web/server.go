package web

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/internal/httpx"
)

// Backend is what the public listener needs from the engine. *core.Engine
// satisfies it.
type Backend interface {
	// Tick runs one tick; see core.Engine.Tick.
	Tick(ctx context.Context, trigger core.TickTrigger, campaigns ...int64) (*core.TickResult, error)
	// Execute queues a campaign's recipients; see core.Engine.Execute.
	Execute(ctx context.Context, id int64) (*core.ExecuteResult, error)
	// ApplyEvents records provider events; see core.Engine.ApplyEvents.
	ApplyEvents(ctx context.Context, events []core.DeliveryEvent) (*core.EventsResult, error)
	// Unsubscribe handles a one-click unsubscribe; see core.Engine.Unsubscribe.
	Unsubscribe(ctx context.Context, u *core.Unsubscriber, token string) (*core.Recipient, error)
}

// Defaults a zero Config field takes, and fixed limits.
const (
	// DefaultMaxBodyBytes bounds a JSON request body (a SendGrid batch is
	// at most a few hundred KiB).
	DefaultMaxBodyBytes int64 = 1 << 20
	// MaxUnsubscribeBodyBytes bounds a one-click unsubscribe POST body,
	// which carries one short form field.
	MaxUnsubscribeBodyBytes int64 = 4 << 10
	// DefaultSignatureMaxAge is how old a signed webhook's timestamp may
	// be; see the package documentation for why it is this long.
	DefaultSignatureMaxAge = 48 * time.Hour
	// MinCronSecretLen is the shortest CronSecret New accepts.
	MinCronSecretLen = 16
)

// Server timeouts. WriteTimeout covers a whole request including a tick,
// which the engine bounds with tick_timeout (50 s by default, at most a
// minute).
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 90 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 32 << 10
	// maxFutureSkew is how far in the future a signed timestamp may be.
	maxFutureSkew = 5 * time.Minute
)

// Config configures a Server. Zero fields take the defaults documented on
// each.
type Config struct {
	// Listen is the TCP address to listen on, e.g. "127.0.0.1:8080".
	// Required. The listener speaks plain HTTP: put a TLS-terminating
	// proxy in front of it.
	Listen string
	// CronSecret is the bearer token the /api cron endpoints require;
	// empty disables them (404). It must be at least MinCronSecretLen
	// characters.
	CronSecret string
	// SendGridWebhook serves POST /webhooks/sendgrid. False (no SendGrid
	// sender is configured) leaves the route out: it answers 404.
	SendGridWebhook bool
	// SendGridPublicKey is the Signed Event Webhook verification key as
	// SendGrid shows it: base64 of the DER (PKIX) ECDSA P-256 public key.
	// A PEM block is accepted too. Empty refuses every webhook post (403)
	// unless SendGridUnsigned is set.
	SendGridPublicKey string
	// SendGridUnsigned accepts unsigned webhook posts when no
	// SendGridPublicKey is set: anyone who can reach the listener can
	// then bounce, suppress and unsubscribe any recipient. An explicit
	// opt-in for a listener only SendGrid can reach; it cannot be combined
	// with SendGridPublicKey.
	SendGridUnsigned bool
	// SignatureMaxAge is how old a signed webhook's timestamp may be
	// (DefaultSignatureMaxAge if zero; negative disables the check).
	SignatureMaxAge time.Duration
	// Unsubscriber checks one-click unsubscribe tokens; nil makes the
	// unsubscribe routes answer 404.
	Unsubscriber *core.Unsubscriber
	// MaxBodyBytes bounds JSON request bodies (DefaultMaxBodyBytes if
	// zero); larger ones are 413 too_large. Unsubscribe bodies are bounded
	// by MaxUnsubscribeBodyBytes.
	MaxBodyBytes int64
	// Logger receives refused requests (warn), failures (error) and one
	// line per request (debug). Nil discards.
	Logger hclog.Logger
}

// Server is the public HTTP listener. Create it with New, then call
// Listen, Serve (blocking) and finally Shutdown. A Server is used once.
type Server struct {
	b     Backend
	cfg   Config
	log   hclog.Logger
	sgKey *ecdsa.PublicKey // nil: unsigned posts refused unless cfg.SendGridUnsigned
	hs    *httpx.Server
	now   func() time.Time
}

// Validate checks what New would refuse, so a configuration can be
// checked without starting a server. It returns an EINVALID error when
// Listen is not a host:port address, the CronSecret is set but too short,
// SendGridPublicKey is set but not a base64 (or PEM) ECDSA P-256 public
// key, or SendGridUnsigned is set together with SendGridPublicKey.
func (cfg Config) Validate() error {
	if strings.TrimSpace(cfg.Listen) == "" {
		return core.Errorf(core.EINVALID, "listen: an address (host:port) is required")
	}
	if _, port, err := net.SplitHostPort(cfg.Listen); err != nil || port == "" {
		return core.Errorf(core.EINVALID, "listen: %q is not a host:port address (e.g. \"127.0.0.1:8080\")", cfg.Listen)
	}
	if cfg.CronSecret != "" && len(cfg.CronSecret) < MinCronSecretLen {
		return core.Errorf(core.EINVALID, "cron secret: must be at least %d characters", MinCronSecretLen)
	}
	if strings.TrimSpace(cfg.SendGridPublicKey) != "" {
		if _, err := ParseSendGridPublicKey(cfg.SendGridPublicKey); err != nil {
			return err
		}
		if cfg.SendGridUnsigned {
			return core.Errorf(core.EINVALID, "sendgrid webhook: unsigned posts cannot be accepted when a public key is set: choose one")
		}
	}
	return nil
}

// New returns a Server answering with b. It does not listen yet. It
// returns an EINVALID error when b is nil or cfg.Validate fails.
func New(b Backend, cfg Config) (*Server, error) {
	if b == nil {
		return nil, core.Errorf(core.EINVALID, "web: new server: a backend is required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("web: new server: %w", err)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.SignatureMaxAge == 0 {
		cfg.SignatureMaxAge = DefaultSignatureMaxAge
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	s := &Server{b: b, cfg: cfg, log: log, now: time.Now}
	if strings.TrimSpace(cfg.SendGridPublicKey) != "" {
		key, err := ParseSendGridPublicKey(cfg.SendGridPublicKey)
		if err != nil {
			return nil, fmt.Errorf("web: new server: %w", err)
		}
		s.sgKey = key
	}
	s.hs = httpx.NewServer("web", &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	})
	return s, nil
}

// Listen opens the TCP listener on Config.Listen. It fails if it was
// already called or the address cannot be bound.
func (s *Server) Listen() error {
	if err := s.hs.Listen("tcp", s.cfg.Listen); err != nil {
		return err
	}
	if s.cfg.SendGridWebhook && s.sgKey == nil {
		if s.cfg.SendGridUnsigned {
			s.log.Warn("sendgrid webhook accepts UNSIGNED posts (sendgrid_webhook_unsigned = true): anyone who reaches this listener can bounce, suppress and unsubscribe any recipient; set sendgrid_public_key instead")
		} else {
			s.log.Warn("sendgrid webhook refuses every post: no sendgrid_public_key is set")
		}
	}
	s.log.Info("public HTTP listener up", "addr", s.hs.Addr().String(),
		"sendgrid_webhook", s.webhookMode(), "unsubscribe", s.cfg.Unsubscriber != nil, "cron", s.cfg.CronSecret != "")
	return nil
}

// webhookMode names how the SendGrid webhook is guarded, for the log.
func (s *Server) webhookMode() string {
	switch {
	case !s.cfg.SendGridWebhook:
		return "off"
	case s.sgKey != nil:
		return "signed"
	case s.cfg.SendGridUnsigned:
		return "UNSIGNED (accepted from anyone)"
	}
	return "refused (no sendgrid_public_key)"
}

// Addr returns the address Listen bound (useful with port 0), or nil
// before Listen.
func (s *Server) Addr() net.Addr { return s.hs.Addr() }

// Serve answers requests on the listener until Shutdown. It returns nil
// after Shutdown, and an error if Listen was not called, Serve was already
// called, or accepting fails.
func (s *Server) Serve() error { return s.hs.Serve() }

// Shutdown stops accepting connections and waits for in-flight requests
// until ctx is done, then closes what remains and returns ctx's error,
// wrapped. A tick started by the cron endpoint is not cancelled by the
// forced close; it runs to its own timeout.
func (s *Server) Shutdown(ctx context.Context) error { return s.hs.Shutdown(ctx) }

// Handler returns the routes with the server's middleware, for embedding
// or tests; Serve uses it. Only the routes in the package documentation
// exist.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	if s.cfg.SendGridWebhook {
		mux.HandleFunc("POST /webhooks/sendgrid", s.sendgridWebhook)
	}
	if s.cfg.Unsubscriber != nil {
		mux.HandleFunc("GET /unsubscribe/{token}", s.unsubscribePage)
		mux.HandleFunc("POST /unsubscribe/{token}", s.unsubscribePost)
	}
	if s.cfg.CronSecret != "" {
		mux.HandleFunc("POST /api/cron/process-email-queue", s.cronTick)
		mux.HandleFunc("POST /api/campaigns/{id}/execute", s.cronExecute)
	}
	guard := httpx.Guard{Name: "public HTTP", Log: s.log, Fields: func(r *http.Request) []any {
		return []any{"path", logPath(r), "remote", r.RemoteAddr}
	}}
	return guard.Wrap(secureHeaders(httpx.Routes(mux, nil)))
}

// secureHeaders sets the headers every answer carries: no content
// sniffing, no caching, no referrer.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// logPath is the request path for the log, with an unsubscribe token
// (a capability) cut short.
func logPath(r *http.Request) string {
	p := r.URL.Path
	if rest, ok := strings.CutPrefix(p, "/unsubscribe/"); ok && len(rest) > 8 {
		return "/unsubscribe/" + rest[:8] + "..."
	}
	return p
}
