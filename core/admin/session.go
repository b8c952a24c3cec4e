package admin

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/campaignd/campaignd/core"
)

// MinTokenLen is the shortest admin_token (and metrics_token) accepted:
// sixteen characters, so guessing it at the login's rate limit is out of
// reach.
const MinTokenLen = 16

// Session and link lifetimes.
const (
	// SessionTTL is how long a login lasts without being used; each
	// request of the session extends it.
	SessionTTL = 12 * time.Hour
	// DefaultLinkTTL is how long a one-time login link is valid.
	DefaultLinkTTL = 10 * time.Minute
	// maxSessions and maxLinks bound the memory a flood of logins or
	// link requests can take: past them the oldest goes.
	maxSessions = 1000
	maxLinks    = 100
)

// sessionCookie names the session cookie.
const sessionCookie = "campaignd_session"

// session is one logged-in browser: its CSRF token, bound to it, and the
// message the next page shows (the outcome of an action).
type session struct {
	id      string
	csrf    string
	expires time.Time
	flash   string
	flashOK bool
}

// Auth holds the dashboard's logins: the admin token, the sessions and the
// one-time links, all in memory (a restart of the daemon logs everyone
// out and voids the links), and the per-address rate limit on wrong
// tokens. Safe for concurrent use.
type Auth struct {
	token   []byte
	linkTTL time.Duration
	now     func() time.Time
	limit   *limiter

	mu       sync.Mutex
	sessions map[string]*session
	links    map[string]time.Time // one-time link token -> expiry
}

// AuthConfig configures NewAuth.
type AuthConfig struct {
	// AdminToken is the dashboard's password, at least MinTokenLen
	// characters; empty: only one-time links log in.
	AdminToken string
	// LinkTTL is how long a one-time login link is valid (DefaultLinkTTL
	// when 0).
	LinkTTL time.Duration
	// Now is the clock (time.Now when nil), for tests.
	Now func() time.Time
}

// NewAuth returns the dashboard's logins. EINVALID for an admin token
// shorter than MinTokenLen.
func NewAuth(c AuthConfig) (*Auth, error) {
	if c.AdminToken != "" && len(c.AdminToken) < MinTokenLen {
		return nil, core.Errorf(core.EINVALID, "admin_token: %d characters is too short to guess at a login's rate; use at least %d (e.g. `openssl rand -hex 24`)", len(c.AdminToken), MinTokenLen)
	}
	if c.LinkTTL <= 0 {
		c.LinkTTL = DefaultLinkTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Auth{token: []byte(c.AdminToken), linkTTL: c.LinkTTL, now: c.Now, limit: newLimiter(c.Now),
		sessions: map[string]*session{}, links: map[string]time.Time{}}, nil
}

// LoginLink is a one-time login link's token and when it expires.
type LoginLink struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

// NewLoginLink makes a one-time login token, valid LinkTTL and for one
// login: /login?link=TOKEN on the admin listener.
func (a *Auth) NewLoginLink() LoginLink {
	tok := randomToken()
	exp := a.now().Add(a.linkTTL)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sweep()
	if len(a.links) >= maxLinks {
		oldestKey(a.links, func(t time.Time) time.Time { return t }, func(k string) { delete(a.links, k) })
	}
	a.links[tok] = exp
	return LoginLink{Token: tok, Expires: exp}
}

// checkToken reports whether tok is the admin token, in constant time.
func (a *Auth) checkToken(tok string) bool {
	if len(a.token) == 0 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(tok), a.token) == 1
}

// useLink consumes a one-time link token: true once, while it is valid.
func (a *Auth) useLink(tok string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	// Compared one by one in constant time: the map's own lookup would
	// leak by timing how much of a token matches a key's hash bucket.
	var found string
	for k := range a.links {
		if subtle.ConstantTimeCompare([]byte(k), []byte(tok)) == 1 {
			found = k
		}
	}
	if found == "" {
		return false
	}
	exp := a.links[found]
	delete(a.links, found)
	return a.now().Before(exp)
}

// newSession starts a session and returns it.
func (a *Auth) newSession() *session {
	s := &session{id: randomToken(), csrf: randomToken(), expires: a.now().Add(SessionTTL)}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sweep()
	if len(a.sessions) >= maxSessions {
		oldestKey(a.sessions, func(s *session) time.Time { return s.expires }, func(k string) { delete(a.sessions, k) })
	}
	a.sessions[s.id] = s
	return s
}

// session returns the request's live session, extending it, or nil.
func (a *Auth) session(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sessions[c.Value]
	if s == nil {
		return nil
	}
	now := a.now()
	if !now.Before(s.expires) {
		delete(a.sessions, s.id)
		return nil
	}
	s.expires = now.Add(SessionTTL)
	return s
}

// endSession forgets a session.
func (a *Auth) endSession(s *session) {
	a.mu.Lock()
	delete(a.sessions, s.id)
	a.mu.Unlock()
}

// setFlash leaves a message for the session's next page.
func (a *Auth) setFlash(s *session, msg string, ok bool) {
	a.mu.Lock()
	s.flash, s.flashOK = msg, ok
	a.mu.Unlock()
}

// takeFlash returns and clears the session's message.
func (a *Auth) takeFlash(s *session) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m, ok := s.flash, s.flashOK
	s.flash = ""
	return m, ok
}

// checkCSRF reports whether the form's csrf field is the session's token.
func (s *session) checkCSRF(r *http.Request) bool {
	return subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.csrf)) == 1
}

// sweep drops expired sessions and links; a.mu held.
func (a *Auth) sweep() {
	now := a.now()
	for k, s := range a.sessions {
		if !now.Before(s.expires) {
			delete(a.sessions, k)
		}
	}
	for k, exp := range a.links {
		if !now.Before(exp) {
			delete(a.links, k)
		}
	}
}

// oldestKey deletes the entry of m that expires first.
func oldestKey[V any](m map[string]V, at func(V) time.Time, del func(string)) {
	var key string
	var first time.Time
	for k, v := range m {
		if t := at(v); key == "" || t.Before(first) {
			key, first = k, t
		}
	}
	if key != "" {
		del(key)
	}
}

// setCookie gives the browser the session cookie: HttpOnly (no script
// reads it), SameSite=Strict (no other site's page sends it), Secure when
// the request came over TLS.
func setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// randomToken is 32 random bytes, URL-safe base64.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail (Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Rate limit of wrong tokens, per client address.
const (
	// loginFailures wrong tokens within loginWindow block the address.
	loginFailures = 5
	loginWindow   = time.Minute
	// The block starts at loginBackoff and doubles with every wrong token
	// while blocked, up to loginMaxBackoff.
	loginBackoff    = time.Minute
	loginMaxBackoff = 30 * time.Minute
	maxLimited      = 10000 // addresses tracked, bounding its memory
)

// limiter counts wrong tokens per client address.
type limiter struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*strikes
}

// strikes are one address's recent wrong tokens.
type strikes struct {
	first   time.Time // start of the counting window
	n       int
	until   time.Time // blocked until
	backoff time.Duration
}

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now, m: map[string]*strikes{}}
}

// blocked returns how long the address must still wait, or 0.
func (l *limiter) blocked(addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.m[addr]
	if s == nil {
		return 0
	}
	if d := s.until.Sub(l.now()); d > 0 {
		return d
	}
	return 0
}

// fail counts a wrong token from addr.
func (l *limiter) fail(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	s := l.m[addr]
	// A quiet spell forgets the strikes: a window without a block, or
	// the longest backoff after the last block ended.
	if s == nil || (s.backoff == 0 && now.Sub(s.first) > loginWindow) || (s.backoff > 0 && now.Sub(s.until) > loginMaxBackoff) {
		if len(l.m) >= maxLimited {
			oldestKey(l.m, func(s *strikes) time.Time { return s.first }, func(k string) { delete(l.m, k) })
		}
		s = &strikes{first: now}
		l.m[addr] = s
	}
	s.n++
	switch {
	case s.backoff > 0:
		s.backoff = min(s.backoff*2, loginMaxBackoff)
		s.until = now.Add(s.backoff)
	case s.n >= loginFailures:
		s.backoff = loginBackoff
		s.until = now.Add(s.backoff)
	}
}

// succeed forgets addr's wrong tokens.
func (l *limiter) succeed(addr string) {
	l.mu.Lock()
	delete(l.m, addr)
	l.mu.Unlock()
}

// clientAddr is the request's peer address without its port: the
// listener is not behind a proxy the daemon trusts, so no header counts.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
