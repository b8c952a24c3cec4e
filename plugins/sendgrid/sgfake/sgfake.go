// Package sgfake is an in-process fake of SendGrid's v3 Mail Send API
// (POST /v3/mail/send) for tests: the sendgrid plugin's own tests and
// end-to-end tests elsewhere in the repository. It imports only the
// standard library.
//
// It also serves GET /v3/scopes (the permissions of the calling key, the
// read-only request a sender uses to check its key): 200 with
// {"scopes":[...]} (SetScopes; "mail.send" by default) for the right key,
// 401 as below otherwise.
//
// It answers as the real API documents it, so a client that works against
// the fake has been checked against the documented contract:
//
//   - authentication: "Authorization: Bearer <key>"; a missing or wrong key
//     is 401 with an {"errors":[...]} body;
//   - the request: a body over MaxBodyBytes (30 MiB by default, the
//     documented 30 MB message limit) is 413, invalid UTF-8 or a
//     Content-Type other than application/json is 415, a body that is not
//     the documented JSON shape is 400, and every documented parameter rule
//     the fake checks (see Validate) is 400 with the documented message,
//     the offending field and a help link, as many errors as it finds;
//   - acceptance: 202 with an empty body, a Date and a random X-Message-Id;
//     mail_settings.sandbox_mode.enable=true is 200 and nothing is
//     delivered;
//   - a from address outside SetVerifiedSenders is 403, an asm.group_id
//     outside SetASMGroups is 400.
//
// Tests steer it with scripted responses (Enqueue, FailNext, RateLimit,
// Stall) consumed in order by the next authenticated requests, with rules
// keyed by recipient address (RespondTo) for whole-campaign tests, and with
// SetDelay. Accepted requests are recorded and returned decoded by
// Messages. A Server is safe for concurrent use; every method may be called
// while requests are in flight.
//
// Sources: the v3 Mail Send reference and its "Status Codes & Errors" page
// (sendgrid/docs content/docs/API_Reference/Web_API_v3/Mail/index.html and
// errors.md), "How to use the Web API v3" (rate_limits.md, errors.md,
// authentication.md) and the OpenAPI description twilio/sendgrid-oai
// spec/json/tsg_mail_v3.json. Where those are silent the choice is noted
// at the rule.
package sgfake

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// MailSendPath and ScopesPath are the paths the fake serves; others are
// 404.
const (
	MailSendPath = "/v3/mail/send"
	ScopesPath   = "/v3/scopes"
)

// DefaultAPIKey is the API key a new Server accepts.
const DefaultAPIKey = "SG.sgfake-test-key.0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"

// DefaultMaxBodyBytes is the largest request body a new Server accepts:
// the documented "total size of your email, including attachments, must be
// less than 30MB", read as 30 MiB of (decompressed) JSON.
const DefaultMaxBodyBytes = 30 << 20

// maxDrain bounds how much of an oversized body is read and discarded
// before the 413 is sent.
const maxDrain = 256 << 20

// DefaultRateLimit is the X-RateLimit-Limit a scripted 429 carries unless
// its Header names another.
const DefaultRateLimit = 600

// Response is a scripted answer: to the next request (Enqueue) or to every
// request for one recipient (RespondTo).
type Response struct {
	// Status is the HTTP status to answer with; 0 means 500.
	Status int
	// Body is the response body. Empty means the documented body for
	// Status: nothing for 2xx, an {"errors":[...]} body otherwise.
	Body string
	// Header is added to the response; it may override the defaults
	// (Content-Type, X-RateLimit-*, X-Message-Id).
	Header http.Header
	// ResetAfter, for a 429, sets X-RateLimit-Reset to the response's Date
	// plus ResetAfter rounded up to whole seconds (Unix seconds, as
	// documented); 0 means one second. With Date and Reset both in whole
	// seconds a client computing Reset-Date gets exactly ResetAfter.
	ResetAfter time.Duration
	// NoRateLimitHeaders, for a 429, omits the X-RateLimit-* headers (to
	// test a client's fallback to Retry-After or to its own default).
	NoRateLimitHeaders bool
	// Delay waits this long before answering; the wait ends early, without
	// an answer, if the client goes away or the server closes.
	Delay time.Duration
	// Hang never answers: the handler waits until the client goes away or
	// the server closes (a stalled provider).
	Hang bool
}

// Status returns a Response with the given status and its documented body.
func Status(code int) Response { return Response{Status: code} }

// RateLimited returns a 429 whose X-RateLimit-Reset lies resetAfter
// (rounded up to whole seconds) after its Date.
func RateLimited(resetAfter time.Duration) Response {
	return Response{Status: http.StatusTooManyRequests, ResetAfter: resetAfter}
}

// Message is one request the fake accepted (202, or 200 in sandbox mode).
type Message struct {
	// ID is the X-Message-Id the fake answered with; empty in sandbox mode.
	ID string
	// Sandbox is true when the request enabled sandbox mode: it was
	// validated but nothing would be delivered.
	Sandbox bool
	// Mail is the decoded request body.
	Mail Mail
	// Body is the request body as received (after gzip decoding).
	Body []byte
	// Header holds the request headers with Authorization removed.
	Header http.Header
	// Received is when the request was accepted.
	Received time.Time
}

// Recipients returns every to, cc and bcc address of m, in order.
func (m Message) Recipients() []string {
	var out []string
	for _, p := range m.Mail.Personalizations {
		for _, list := range [][]Address{p.To, p.CC, p.BCC} {
			for _, a := range list {
				out = append(out, a.Email)
			}
		}
	}
	return out
}

// Stats counts the requests the fake has seen.
type Stats struct {
	// Requests counts requests to MailSendPath with method POST.
	Requests int
	// ScopeRequests counts requests to ScopesPath with method GET.
	ScopeRequests int
	// Accepted counts 202 answers; Sandboxed counts 200 (sandbox) answers.
	Accepted, Sandboxed int
	// ByStatus counts every answer by HTTP status, scripted ones included
	// (a Hang that was abandoned counts as status 0).
	ByStatus map[int]int
}

// Server is a running fake. Create it with New and Close it when done.
type Server struct {
	ts     *httptest.Server
	closed chan struct{}
	once   sync.Once

	mu            sync.Mutex
	apiKey        string
	maxBody       int64
	delay         time.Duration
	allowUnknown  bool
	senders       []string
	asmGroups     map[int64]bool
	queue         []Response
	rules         map[string]Response
	messages      []Message
	stats         Stats
	now           func() time.Time
	sandboxStatus int
	scopes        []string
}

// New starts a fake on a loopback port. It accepts DefaultAPIKey, bodies
// up to DefaultMaxBodyBytes, any from address and any ASM group, and
// answers at once.
func New() *Server {
	s := &Server{
		closed:        make(chan struct{}),
		apiKey:        DefaultAPIKey,
		maxBody:       DefaultMaxBodyBytes,
		rules:         map[string]Response{},
		stats:         Stats{ByStatus: map[int]int{}},
		now:           time.Now,
		sandboxStatus: http.StatusOK,
		scopes:        []string{"mail.send"},
	}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s
}

// URL is the base URL of the fake (scheme and host, no path): the value of
// the sendgrid plugin's api_url option.
func (s *Server) URL() string { return s.ts.URL }

// Close ends hanging and delayed requests, then shuts the server down and
// waits for its handlers. It is safe to call more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closed)
		s.ts.CloseClientConnections()
		s.ts.Close()
	})
}

// SetAPIKey sets the one API key the fake accepts.
func (s *Server) SetAPIKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiKey = key
}

// APIKey returns the key the fake accepts.
func (s *Server) APIKey() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apiKey
}

// SetScopes sets the permissions GET /v3/scopes lists for the accepted
// key (by default just "mail.send").
func (s *Server) SetScopes(scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scopes = append([]string(nil), scopes...)
}

// SetMaxBodyBytes sets the largest accepted request body; larger is 413.
func (s *Server) SetMaxBodyBytes(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxBody = n
}

// SetDelay makes every answer wait d (0 for none). The wait ends early,
// without an answer, when the client goes away or the server closes.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// SetAllowUnknownFields decides what an unknown property of the request
// body or of a personalization does. The documentation does not say what
// the real API does with one; the fake rejects it by default (400) so that
// a misspelt field in a client fails loudly instead of being ignored.
func (s *Server) SetAllowUnknownFields(allow bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allowUnknown = allow
}

// SetVerifiedSenders restricts the from address to verified Sender
// Identities: each entry is an address ("news@example.com") or a whole
// domain ("example.com"), compared case-insensitively. Another from address
// is 403 with the real API's message. No entries (the default) accepts any
// from address.
func (s *Server) SetVerifiedSenders(senders ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.senders = nil
	for _, v := range senders {
		s.senders = append(s.senders, strings.ToLower(strings.TrimSpace(v)))
	}
}

// SetASMGroups lists the unsubscribe group ids that exist on the fake's
// account; another asm.group_id is 400 with the documented message. No ids
// (the default) accepts any group id.
func (s *Server) SetASMGroups(ids ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asmGroups = nil
	if len(ids) > 0 {
		s.asmGroups = map[int64]bool{}
		for _, id := range ids {
			s.asmGroups[id] = true
		}
	}
}

// Enqueue scripts answers for the next authenticated requests to
// MailSendPath, one each, in order. A scripted answer replaces validation:
// it stands for the provider's state (rate limit, outage), not for the
// request's content. Requests that fail authentication do not consume it.
func (s *Server) Enqueue(rs ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, rs...)
}

// FailNext scripts n answers with status and its documented body and
// headers (a 429 carries X-RateLimit-* headers with a one-second reset).
func (s *Server) FailNext(status, n int) {
	for range n {
		s.Enqueue(Status(status))
	}
}

// RateLimit scripts n 429 answers whose X-RateLimit-Reset lies resetAfter
// after their Date.
func (s *Server) RateLimit(n int, resetAfter time.Duration) {
	for range n {
		s.Enqueue(RateLimited(resetAfter))
	}
}

// Stall scripts n answers that never come (until the client gives up or
// the server closes).
func (s *Server) Stall(n int) {
	for range n {
		s.Enqueue(Response{Hang: true})
	}
}

// Pending returns how many scripted answers are still queued.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// RespondTo answers every valid request that has email among its to, cc or
// bcc addresses (compared case-insensitively) with r, after validation and
// instead of accepting it. It lets a whole-campaign test make one
// recipient's sends fail, throttle or stall.
func (s *Server) RespondTo(email string, r Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules[strings.ToLower(strings.TrimSpace(email))] = r
}

// ClearRules removes every RespondTo rule.
func (s *Server) ClearRules() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = map[string]Response{}
}

// Messages returns the accepted requests in the order they were accepted.
// The slice is a copy; its Messages share their Body and Mail with the
// fake's record and must not be modified.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Stats returns the request counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ByStatus = make(map[int]int, len(s.stats.ByStatus))
	for k, v := range s.stats.ByStatus {
		st.ByStatus[k] = v
	}
	return st
}

// apiError is one entry of the documented error body.
type apiError struct {
	Message string  `json:"message"`
	Field   *string `json:"field"`
	Help    *string `json:"help"`
}

// errorBody is the documented failure body: {"errors":[...]}.
type errorBody struct {
	Errors []apiError `json:"errors"`
}

// defaultMessages are the bodies of failures that are not about a field:
// the texts of the OpenAPI description's examples and of rate_limits.md.
var defaultMessages = map[int]string{
	http.StatusBadRequest:            "Bad Request",
	http.StatusUnauthorized:          "authorization required",
	http.StatusForbidden:             "access forbidden",
	http.StatusNotFound:              "not found",
	http.StatusMethodNotAllowed:      "method not allowed",
	http.StatusRequestEntityTooLarge: "content too large",
	http.StatusUnsupportedMediaType:  "Unsupported Media Type",
	http.StatusTooManyRequests:       "too many requests",
	http.StatusInternalServerError:   "internal server error",
	http.StatusServiceUnavailable:    "service unavailable",
}

// invalidGrant is the real API's message for a key it does not know.
const invalidGrant = "The provided authorization grant is invalid, expired, or revoked"

// unverifiedSender is the real API's 403 for a from address that is not a
// verified Sender Identity.
const unverifiedSender = "The from address does not match a verified Sender Identity. Mail cannot be sent until this error is resolved. Visit https://sendgrid.com/docs/for-developers/sending-email/sender-identity/ to see the Sender Identity requirements"

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == ScopesPath {
		s.serveScopes(w, r)
		return
	}
	if r.URL.Path != MailSendPath {
		s.writeError(w, http.StatusNotFound, nil, apiError{Message: defaultMessages[http.StatusNotFound]})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.writeError(w, http.StatusMethodNotAllowed, nil, apiError{Message: defaultMessages[http.StatusMethodNotAllowed]})
		return
	}
	s.mu.Lock()
	s.stats.Requests++
	key, maxBody, delay := s.apiKey, s.maxBody, s.delay
	s.mu.Unlock()

	// Read the body before answering anything, so that an early answer
	// never races the client's write; stop one byte past the limit.
	raw, readErr := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if int64(len(raw)) > maxBody {
		// Drain what is left (bounded) before answering, so the client
		// reads a clean answer instead of a connection reset mid-upload.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxDrain))
	}

	if !s.wait(w, r, delay) {
		return
	}

	// Authentication comes first, as on the real API.
	if !s.authorized(w, r, key) {
		return
	}

	// The provider's state (rate limit, outage) before the content.
	s.mu.Lock()
	var scripted *Response
	if len(s.queue) > 0 {
		r0 := s.queue[0]
		s.queue = s.queue[1:]
		scripted = &r0
	}
	s.mu.Unlock()
	if scripted != nil {
		s.writeScripted(w, r, *scripted)
		return
	}

	if readErr != nil {
		s.writeError(w, http.StatusBadRequest, nil, apiError{Message: defaultMessages[http.StatusBadRequest]})
		return
	}
	if int64(len(raw)) > maxBody {
		w.Header().Set("Connection", "close")
		s.writeError(w, http.StatusRequestEntityTooLarge, nil, apiError{Message: defaultMessages[http.StatusRequestEntityTooLarge]})
		return
	}
	body, status, ae := decodeBody(r, raw, maxBody)
	if status != 0 {
		s.writeError(w, status, nil, ae)
		return
	}

	s.mu.Lock()
	opts := validateOptions{
		allowUnknown: s.allowUnknown,
		asmGroups:    s.asmGroups,
		now:          s.now(),
	}
	senders := append([]string(nil), s.senders...)
	s.mu.Unlock()

	m, errs := validate(body, opts)
	if len(errs) > 0 {
		s.writeError(w, http.StatusBadRequest, nil, errs...)
		return
	}
	if len(senders) > 0 && !verified(senders, m.From.Email) {
		s.writeError(w, http.StatusForbidden, nil, apiError{Message: unverifiedSender, Field: ptr("from")})
		return
	}

	s.mu.Lock()
	var rule *Response
	for _, p := range m.Personalizations {
		for _, list := range [][]Address{p.To, p.CC, p.BCC} {
			for _, a := range list {
				if rr, ok := s.rules[strings.ToLower(a.Email)]; ok && rule == nil {
					rule = &rr
				}
			}
		}
	}
	s.mu.Unlock()
	if rule != nil {
		s.writeScripted(w, r, *rule)
		return
	}

	sandbox := m.MailSettings != nil && m.MailSettings.SandboxMode != nil &&
		m.MailSettings.SandboxMode.Enable != nil && *m.MailSettings.SandboxMode.Enable
	rec := Message{Sandbox: sandbox, Mail: *m, Body: body, Header: r.Header.Clone(), Received: time.Now()}
	rec.Header.Del("Authorization")
	s.setDate(w)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", "0")
	status = http.StatusAccepted
	if sandbox {
		status = http.StatusOK
	} else {
		rec.ID = newMessageID()
		w.Header().Set("X-Message-Id", rec.ID)
	}
	s.mu.Lock()
	s.messages = append(s.messages, rec)
	if sandbox {
		s.stats.Sandboxed++
	} else {
		s.stats.Accepted++
	}
	s.stats.ByStatus[status]++
	s.mu.Unlock()
	w.WriteHeader(status)
}

// authorized checks the Bearer key; when it is missing or wrong it answers
// 401 with the real API's texts and returns false.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request, key string) bool {
	auth := r.Header.Get("Authorization")
	token, isBearer := strings.CutPrefix(auth, "Bearer ")
	switch {
	case auth == "" || !isBearer || strings.TrimSpace(token) == "":
		s.writeError(w, http.StatusUnauthorized, nil, apiError{Message: defaultMessages[http.StatusUnauthorized]})
		return false
	case token != key:
		s.writeError(w, http.StatusUnauthorized, nil, apiError{Message: invalidGrant})
		return false
	}
	return true
}

// serveScopes answers GET /v3/scopes: the accepted key's scopes as
// {"scopes":[...]}. Scripted responses and rules are for mail/send and
// are not consumed here; SetDelay applies.
func (s *Server) serveScopes(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		s.writeError(w, http.StatusMethodNotAllowed, nil, apiError{Message: defaultMessages[http.StatusMethodNotAllowed]})
		return
	}
	s.mu.Lock()
	s.stats.ScopeRequests++
	key, delay := s.apiKey, s.delay
	scopes := append([]string{}, s.scopes...)
	s.mu.Unlock()
	if !s.wait(w, r, delay) || !s.authorized(w, r, key) {
		return
	}
	b, _ := json.Marshal(struct {
		Scopes []string `json:"scopes"`
	}{scopes})
	s.setDate(w)
	w.Header().Set("Content-Type", "application/json")
	s.count(http.StatusOK)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// decodeBody checks the media type, undoes gzip and checks UTF-8. It
// returns a non-zero status with its error when the body is refused.
func decodeBody(r *http.Request, raw []byte, maxBody int64) ([]byte, int, apiError) {
	// The documentation lists 415 without saying when; the fake uses it
	// for a body that is not declared as JSON, an unknown encoding and
	// (documented) invalid UTF-8.
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, http.StatusUnsupportedMediaType, apiError{Message: "Content-Type should be application/json."}
	}
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		// Documented: gzip-compressed bodies (for accounts that have it).
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, http.StatusBadRequest, apiError{Message: defaultMessages[http.StatusBadRequest]}
		}
		plain, err := io.ReadAll(io.LimitReader(zr, maxBody+1))
		if err != nil {
			return nil, http.StatusBadRequest, apiError{Message: defaultMessages[http.StatusBadRequest]}
		}
		if int64(len(plain)) > maxBody {
			return nil, http.StatusRequestEntityTooLarge, apiError{Message: defaultMessages[http.StatusRequestEntityTooLarge]}
		}
		raw = plain
	default:
		return nil, http.StatusUnsupportedMediaType, apiError{Message: fmt.Sprintf("Content-Encoding %q is not supported.", enc)}
	}
	if !utf8.Valid(raw) {
		return nil, http.StatusUnsupportedMediaType, apiError{Message: "Invalid UTF8 in request"}
	}
	return raw, 0, apiError{}
}

// verified reports whether from matches one of the verified senders.
func verified(senders []string, from string) bool {
	from = strings.ToLower(from)
	_, domain, _ := strings.Cut(from, "@")
	for _, v := range senders {
		if v == from || (!strings.Contains(v, "@") && v == domain) {
			return true
		}
	}
	return false
}

// wait sleeps d unless the client leaves or the server closes first; it
// reports whether the handler should go on and answer.
func (s *Server) wait(w http.ResponseWriter, r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.closed:
	}
	s.count(0)
	return false
}

// writeScripted answers with a scripted Response.
func (s *Server) writeScripted(w http.ResponseWriter, r *http.Request, sr Response) {
	if sr.Hang {
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		s.count(0)
		return
	}
	if !s.wait(w, r, sr.Delay) {
		return
	}
	status := sr.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	now := s.setDate(w)
	h := w.Header()
	if status == http.StatusTooManyRequests && !sr.NoRateLimitHeaders {
		reset := sr.ResetAfter
		if reset <= 0 {
			reset = time.Second
		}
		secs := int64((reset + time.Second - 1) / time.Second)
		h.Set("X-RateLimit-Limit", strconv.Itoa(DefaultRateLimit))
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(now.Unix()+secs, 10))
	}
	if status == http.StatusAccepted {
		h.Set("X-Message-Id", newMessageID())
	}
	body := sr.Body
	if body == "" && (status < 200 || status > 299) {
		msg, ok := defaultMessages[status]
		if !ok {
			msg = strings.ToLower(http.StatusText(status))
		}
		b, _ := json.Marshal(errorBody{Errors: []apiError{{Message: msg}}})
		body = string(b)
	}
	if body != "" {
		h.Set("Content-Type", "application/json")
	}
	for k, vs := range sr.Header {
		h.Del(k)
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	s.count(status)
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// writeError answers with the documented error body. extra headers are
// added first.
func (s *Server) writeError(w http.ResponseWriter, status int, extra http.Header, errs ...apiError) {
	s.setDate(w)
	for k, vs := range extra {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	b, _ := json.Marshal(errorBody{Errors: errs})
	w.Header().Set("Content-Type", "application/json")
	s.count(status)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// setDate sets the Date header explicitly (net/http would set the same,
// later) and returns the instant it names, truncated to the second.
func (s *Server) setDate(w http.ResponseWriter) time.Time {
	s.mu.Lock()
	now := s.now().UTC().Truncate(time.Second)
	s.mu.Unlock()
	w.Header().Set("Date", now.Format(http.TimeFormat))
	return now
}

// count records an answer's status (0: none was given).
func (s *Server) count(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.ByStatus[status]++
}

// newMessageID returns a random id shaped like SendGrid's X-Message-Id
// (22 characters of unpadded URL-safe base64).
func newMessageID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func ptr(s string) *string { return &s }
