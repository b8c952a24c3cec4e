// Package sgsender is the SendGrid sender behind the
// campaignd-sender-sendgrid plugin: option parsing, building a v3 Mail Send
// request from an sdk.Message, sending it, and classifying the answer into
// the sdk's error classes. It imports only the sdk, the standard library
// and sendgrid-go.
//
// sendgrid-go is used for what it is good at, the request's JSON model
// (helpers/mail) and its request conventions (sendgrid.GetRequest: the
// Bearer header, User-Agent and Accept), and deliberately not for sending.
// Its send path has four traps, each avoided below where it matters:
//
//  1. A non-2xx answer is not a Go error: Client.Send returns (resp, nil)
//     for a 400 or a 500. Here the status is always inspected (Classify).
//  2. A *sendgrid.Client is not safe for concurrent sends: Send writes the
//     body into the shared embedded rest.Request (cl.Body = ...) before
//     sending it, so two goroutines can send each other's message. Here
//     every send builds its own request; only the http.Client is shared.
//  3. Its default HTTP client (rest.DefaultClient) has no timeout: a
//     stalled API would hold a send forever. Here the http.Client has
//     Timeout = the timeout option, and every request carries the send's
//     context.
//  4. Its rate-limit retry (MakeRequestRetry and the Async variants)
//     sleeps with time.Sleep until X-RateLimit-Reset, ignoring the
//     context, up to 5 times. Here a 429 is returned at once as
//     ClassThrottled with the wait in RetryAfter: the host requeues the
//     message and stops giving this sender work for the tick.
//
// It also encodes the JSON itself instead of calling mail.GetRequestBody,
// which logs and swallows a marshalling error (returning a nil body) and
// escapes every <, > and & in the HTML body as \u003c..., inflating it.
package sgsender

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sendgrid/sendgrid-go"

	"github.com/campaignd/campaignd/sdk"
)

// Version is the plugin version reported by Info.
var Version = "1.0.0"

// DocumentedMaxPerSecond is SendGrid's documented ceiling for calls to the
// v3 Mail Send endpoint (10,000 requests per second), reported by Info.
const DocumentedMaxPerSecond = 10000

// maxIdleConnsPerHost keeps enough keep-alive connections for a campaign's
// concurrency (net/http's default of 2 would reconnect for almost every
// send at concurrency 5 or more).
const maxIdleConnsPerHost = 64

// Response bodies are read up to maxErrorBody (an error body is a few
// hundred bytes); up to maxDrain more is discarded so the connection can be
// reused, beyond that it is closed.
const (
	maxErrorBody = 64 << 10
	maxDrain     = 1 << 20
)

// Logger is the part of hclog.Logger the sender logs through;
// sdk.Logger() satisfies it. Nothing the sender logs contains the API key.
type Logger interface {
	Debug(msg string, args ...any)
	Warn(msg string, args ...any)
}

// nopLogger discards everything.
type nopLogger struct{}

func (nopLogger) Debug(string, ...any) {}
func (nopLogger) Warn(string, ...any)  {}

// Sender is the SendGrid sdk.Sender. It is safe for concurrent use: every
// Send builds its own request and shares only the configuration (read-only
// once set) and the http.Client. The zero value is not usable: call New.
type Sender struct {
	log    Logger
	getenv func(string) string

	mu    sync.Mutex
	state *state
}

// state is one configuration with the client built for it.
type state struct {
	cfg    *Config
	client *http.Client
}

// New returns an unconfigured Sender logging to log (nil for none).
func New(log Logger) *Sender {
	if log == nil {
		log = nopLogger{}
	}
	return &Sender{log: log}
}

// SetGetenv replaces os.Getenv for the SENDGRID_API_KEY fallback (tests).
// Call it before Configure.
func (s *Sender) SetGetenv(getenv func(string) string) { s.getenv = getenv }

// Configure validates the options (see ParseOptions; every error is
// ClassConfig and names the option) and builds the HTTP client. Nothing is
// sent: a wrong key shows up at the first send as a ClassConfig error with
// HTTP status 401. A previous configuration's idle connections are closed;
// its in-flight sends finish with the old settings.
func (s *Sender) Configure(_ context.Context, options map[string]string) error {
	cfg, err := ParseOptions(options, s.getenv)
	if err != nil {
		return err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone() // proxy from the environment, HTTP/2, sane dial timeouts
	tr.MaxIdleConnsPerHost = maxIdleConnsPerHost
	client := &http.Client{
		Transport: tr,
		// Trap 3: sendgrid-go's default client has no timeout.
		Timeout: cfg.Timeout,
		// The API never redirects; following one would replay the key to
		// wherever it points (or silently turn the POST into a GET).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	s.mu.Lock()
	old := s.state
	s.state = &state{cfg: cfg, client: client}
	s.mu.Unlock()
	if old != nil {
		old.client.CloseIdleConnections()
	}
	keySource := "option"
	if cfg.APIKeyFromEnv {
		keySource = APIKeyEnv
	}
	s.log.Debug("sendgrid configured", "api_url", cfg.APIURL, "timeout", cfg.Timeout.String(),
		"sandbox", cfg.Sandbox, "categories", strings.Join(cfg.Categories, ","),
		"asm_group_id", cfg.ASMGroupID, "api_key_source", keySource)
	return nil
}

// Info names the plugin and reports SendGrid's documented request ceiling.
// There is no concurrency cap: each send is an independent HTTPS request.
func (s *Sender) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "sendgrid", Version: Version, MaxPerSecond: DocumentedMaxPerSecond,
		Options: knownOptions, SecretOptions: secretOptions}, nil
}

// ScopesPath is the v3 endpoint that lists the permissions of the API key
// it is called with. It is read-only and authenticated, which makes it the
// check that the key is valid and may send.
const ScopesPath = "/v3/scopes"

// Check implements sdk.Checker with one GET /v3/scopes to api_url, which
// sends nothing. It returns nil when SendGrid accepts the key and lists
// the mail.send permission among its scopes; otherwise an *sdk.Error
// naming the URL: ClassConfig for a refused key (401, with SendGrid's
// text), a key without mail.send, or an api_url that is not the v3 API;
// ClassTransient for a network failure or a timeout; the class Classify
// gives any other answer. No error text contains the API key.
func (s *Sender) Check(ctx context.Context) error {
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	if st == nil {
		return sdk.ConfigError("check: sendgrid sender is not configured")
	}
	endpoint := st.cfg.APIURL + ScopesPath
	fail := func(e *sdk.Error) error {
		msg := strings.TrimPrefix(e.Message, "send: ")
		msg = strings.Replace(msg, fmt.Sprintf("Get %q: ", endpoint), "", 1) // net/http's *url.Error repeats the URL
		e.Message = "GET " + endpoint + ": " + redact(msg, st.cfg.APIKey)
		return e
	}
	sg := sendgrid.GetRequest(st.cfg.APIKey, ScopesPath, st.cfg.APIURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sg.BaseURL, nil)
	if err != nil {
		return fail(sdk.ConfigError("build request: %v", err))
	}
	for k, v := range sg.Headers {
		req.Header.Set(k, v)
	}
	resp, err := st.client.Do(req)
	if err != nil {
		return fail(transportError(ctx, err, st.cfg.Timeout))
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, e := Classify(resp.StatusCode, resp.Header, data, false, time.Now())
		if e == nil {
			e = sdk.Transient("unexpected %d %s", resp.StatusCode, http.StatusText(resp.StatusCode)).WithHTTP(resp.StatusCode)
		}
		return fail(e)
	}
	var scopes struct {
		Scopes []string `json:"scopes"`
	}
	if err := json.Unmarshal(data, &scopes); err != nil {
		return fail(sdk.ConfigError("the answer is not SendGrid's scopes list (is api_url the v3 API?): %v", err).WithHTTP(resp.StatusCode))
	}
	if !slices.Contains(scopes.Scopes, "mail.send") {
		return fail(sdk.ConfigError("the API key is valid but lacks the mail.send permission (it has %d other scopes)", len(scopes.Scopes)).WithHTTP(resp.StatusCode))
	}
	s.log.Debug("sendgrid check passed", "api_url", st.cfg.APIURL, "scopes", len(scopes.Scopes))
	return nil
}

// Close releases idle connections. Send after Close fails with ClassConfig.
func (s *Sender) Close() error {
	s.mu.Lock()
	old := s.state
	s.state = nil
	s.mu.Unlock()
	if old != nil {
		old.client.CloseIdleConnections()
	}
	return nil
}

// Send delivers msg with one POST /v3/mail/send and classifies the answer
// (see Classify). It returns a Receipt whose ProviderID is SendGrid's
// X-Message-Id on 202 (or on 200 in sandbox mode, when there is none), and
// otherwise an *sdk.Error: ClassConfig when the sender is not configured or
// the From or Reply-To address cannot be used (every message of the
// campaign would fail alike), ClassPermanent when this message cannot be
// expressed as a request, ClassTransient when ctx ends or the request fails
// on the network or times out, and the class of the HTTP answer otherwise.
// It honours ctx at every step. No error text contains the API key.
func (s *Sender) Send(ctx context.Context, msg *sdk.Message) (*sdk.Receipt, error) {
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	if st == nil {
		return nil, sdk.ConfigError("send: sendgrid sender is not configured")
	}
	if msg == nil {
		return nil, sdk.Permanent("send: nil message")
	}
	if err := ctx.Err(); err != nil {
		return nil, sdk.Transient("send: %v", err)
	}
	body, err := buildBody(st.cfg, msg, s.log)
	if err != nil {
		return nil, err
	}

	// Trap 2: a request of its own per send. GetRequest only assembles
	// the library's standard headers; nothing of it is shared.
	sg := sendgrid.GetRequest(st.cfg.APIKey, MailSendPath, st.cfg.APIURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sg.BaseURL, bytes.NewReader(body))
	if err != nil {
		return nil, sdk.ConfigError("send: build request: %s", redact(err.Error(), st.cfg.APIKey))
	}
	for k, v := range sg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")

	start := time.Now()
	resp, err := st.client.Do(req)
	if err != nil {
		e := transportError(ctx, err, st.cfg.Timeout)
		e.Message = redact(e.Message, st.cfg.APIKey)
		s.log.Debug("sendgrid send failed", "campaign", msg.CampaignID, "recipient", msg.RecipientID,
			"class", string(e.Class), "error", e.Message, "elapsed", time.Since(start).String())
		return nil, e
	}
	// Trap 1: whatever the status, err is nil here; Classify decides.
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	_ = resp.Body.Close()
	if readErr != nil && (resp.StatusCode < 200 || resp.StatusCode > 299) {
		// The status is known; a truncated error body only costs detail.
		s.log.Debug("sendgrid read error body", "status", resp.StatusCode, "error", readErr.Error())
	}

	receipt, e := Classify(resp.StatusCode, resp.Header, data, st.cfg.Sandbox, time.Now())
	if e != nil {
		e.Message = redact(e.Message, st.cfg.APIKey)
		s.log.Debug("sendgrid send failed", "campaign", msg.CampaignID, "recipient", msg.RecipientID,
			"status", resp.StatusCode, "class", string(e.Class), "error", e.Message,
			"retry_after", e.RetryAfter.String(), "elapsed", time.Since(start).String())
		return nil, e
	}
	if receipt.ProviderID == "" && !st.cfg.Sandbox {
		s.log.Warn("sendgrid accepted a message without an X-Message-Id", "campaign", msg.CampaignID,
			"recipient", msg.RecipientID, "status", resp.StatusCode)
	}
	s.log.Debug("sendgrid send accepted", "campaign", msg.CampaignID, "recipient", msg.RecipientID,
		"status", resp.StatusCode, "provider_id", receipt.ProviderID, "elapsed", time.Since(start).String())
	return receipt, nil
}

// transportError classifies a failure to get any HTTP answer: always
// ClassTransient (nothing was accepted, or nothing is known to be), with
// the reason spelled out for a cancelled send or a timeout.
func transportError(ctx context.Context, err error, timeout time.Duration) *sdk.Error {
	switch {
	case ctx.Err() != nil:
		return sdk.Transient("send: %v", ctx.Err())
	case isTimeout(err):
		return sdk.Transient("send: no answer within the %s timeout: %v", timeout, err)
	default:
		return sdk.Transient("send: %v", err)
	}
}

// isTimeout reports whether err is a client or network timeout.
func isTimeout(err error) bool {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Timeout() {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// redact removes key from s. The key is never put into a message on
// purpose; this is the safety net for text that comes from elsewhere (an
// HTTP library error, a response body echoing the request).
func redact(s, key string) string {
	if key == "" {
		return s
	}
	return strings.ReplaceAll(s, key, "[redacted]")
}

// encodeJSON encodes v without HTML escaping: SendGrid reads standard JSON,
// and escaping every < and > of an HTML body as \u003c would inflate it
// and could push a large message over the size limit.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
