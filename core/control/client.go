package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/internal/httpx"
)

// Client talks to a campaignd daemon over its control socket. The zero
// value is ready to use and dials DefaultSocketPath. A Client is safe for
// concurrent use; do not copy it after first use.
//
// Every method returns, for an error the daemon answered, a *core.Error with
// the daemon's code and message verbatim (so the CLI prints the same words
// as in standalone mode). For a failure to reach the daemon it returns a
// *core.Error with code core.EUNAVAILABLE wrapping the cause; when no daemon
// is listening at all that error matches errors.Is(err, ErrNoDaemon). A
// socket the caller may not open is a core.EFORBIDDEN error.
type Client struct {
	// SocketPath is the daemon's socket (DefaultSocketPath if empty).
	SocketPath string
	// AllowUIDs are the uids a daemon may run as besides root and the
	// caller's own effective uid: Dial refuses a socket served by anyone
	// else before sending a byte (see Dial).
	AllowUIDs []int
	// HTTPClient, if set, is used for every request instead of the
	// Client's own; its Transport must reach the daemon, for example by
	// dialing with (*Client).Dial.
	HTTPClient *http.Client

	once sync.Once
	hc   *http.Client
}

var _ core.Service = (*Client)(nil)

const (
	// baseURL is the URL the requests are addressed to; the host is
	// ignored on a Unix socket.
	baseURL = "http://campaignd"
	// writeErrGrace is how long a failed write on a connection waits for
	// the connection to close, so that an answer the daemon wrote before
	// hanging up (413 mid-import, 404 before reading) is read rather than
	// lost to a broken-pipe error.
	writeErrGrace = 2 * time.Second
)

// socketPath returns the socket to dial.
func (c *Client) socketPath() string {
	if c.SocketPath == "" {
		return DefaultSocketPath
	}
	return c.SocketPath
}

// httpClient returns HTTPClient or the Client's own, built once.
func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	c.once.Do(func() {
		c.hc = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return c.Dial(ctx)
			},
			Proxy:                 nil,
			DisableCompression:    true,
			MaxIdleConns:          4,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       30 * time.Second,
			ExpectContinueTimeout: time.Second,
		}}
	})
	return c.hc
}

// Dial connects to the daemon's socket and checks, by the kernel's peer
// credentials, that the process serving it runs as root, as the caller's
// uid or as one of AllowUIDs, before anything is sent. If no daemon is
// listening (the socket is missing or refuses connections) the error
// matches ErrNoDaemon; if the caller may not open the socket, or the
// server is someone else, it is a *core.Error with code core.EFORBIDDEN;
// other errors are wrapped with the socket's path.
func (c *Client) Dial(ctx context.Context) (net.Conn, error) {
	path := c.socketPath()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		switch {
		case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOTDIR):
			return nil, &noDaemonError{path: path, err: err}
		case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
			return nil, &core.Error{
				Code: core.EFORBIDDEN,
				Message: fmt.Sprintf("permission denied on the campaignd control socket %s for uid %d: "+
					"the daemon's socket group and mode decide who may connect", path, os.Geteuid()),
				Err: err,
			}
		}
		return nil, fmt.Errorf("dial control socket %s: %w", path, err)
	}
	if err := c.checkServer(conn, path); err != nil {
		conn.Close()
		return nil, err
	}
	return &clientConn{Conn: conn, closed: make(chan struct{})}, nil
}

// noDaemonError is a dial failure that means nobody is listening.
type noDaemonError struct {
	path string
	err  error
}

func (e *noDaemonError) Error() string {
	return fmt.Sprintf("no campaignd daemon is listening on %s: %v", e.path, e.err)
}

func (e *noDaemonError) Unwrap() []error { return []error{ErrNoDaemon, e.err} }

// clientConn delays a write's broken-pipe error until the connection is
// closed (by the transport, after it has read the daemon's answer) or
// writeErrGrace passes. Without it the transport may report the broken
// pipe instead of the 413 or 404 the daemon answered before closing.
type clientConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *clientConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) {
		t := time.NewTimer(writeErrGrace)
		select {
		case <-c.closed:
		case <-t.C:
		}
		t.Stop()
	}
	return n, err
}

func (c *clientConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// call is one request.
type call struct {
	op     string // for error messages: "create campaign"
	method string
	path   string // escaped
	query  url.Values
	in     any       // JSON body, if not nil
	stream io.Reader // streamed body, if not nil
	ctype  string    // streamed body's media type
	out    any       // decoded from a 2xx answer, if not nil
}

// do performs a call and maps its failures as the Client documents.
func (c *Client) do(ctx context.Context, k call) error {
	u := baseURL + k.path
	if len(k.query) > 0 {
		u += "?" + k.query.Encode()
	}
	var body io.Reader
	switch {
	case k.stream != nil:
		// Hide any Len or WriterTo so the transport streams it chunked,
		// whatever its type, and never closes the caller's reader.
		body = struct{ io.Reader }{k.stream}
	case k.in != nil:
		if err := checkUTF8(reflect.ValueOf(k.in), ""); err != nil {
			return err
		}
		b, err := json.Marshal(k.in)
		if err != nil {
			return fmt.Errorf("control: %s: encode request: %w", k.op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, k.method, u, body)
	if err != nil {
		return fmt.Errorf("control: %s: %w", k.op, err)
	}
	req.Header.Set("Accept", "application/json")
	switch {
	case k.stream != nil:
		req.Header.Set("Content-Type", k.ctype)
		// Let the daemon refuse (unknown campaign, bad format) before the
		// whole file is sent.
		req.Header.Set("Expect", "100-continue")
	case k.in != nil:
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return transportError(k.op, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, httpx.MaxErrorBytes))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return httpx.ReadError(resp)
	}
	if k.out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(k.out); err != nil {
		return &core.Error{Code: core.EINTERNAL, Op: "control: " + k.op,
			Err: fmt.Errorf("decode the daemon's answer: %w", err)}
	}
	return nil
}

// transportError maps a failure to get an answer: EFORBIDDEN from Dial as
// it is, anything else EUNAVAILABLE wrapping the cause (ErrNoDaemon
// included).
func transportError(op string, err error) error {
	var ce *core.Error
	if errors.As(err, &ce) {
		return ce
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &core.Error{Code: core.EUNAVAILABLE, Op: "control: " + op, Err: err}
}

// campaignPath is /v1/campaigns/{id} plus an optional suffix.
func campaignPath(id int64, suffix string) string {
	return "/v1/campaigns/" + strconv.FormatInt(id, 10) + suffix
}

// Status reports which daemon is listening: its pid, version and start
// time. It is the cheapest way to learn whether a daemon runs
// (errors.Is(err, ErrNoDaemon) when none does).
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	if err := c.do(ctx, call{op: "status", method: http.MethodGet, path: "/v1/status", out: &st}); err != nil {
		return nil, err
	}
	return &st, nil
}

// StatusDetail reports the daemon's whole status (GET
// /v1/status?detail=true): what Status does, and the database, senders,
// last tick and queue depth its ServerConfig.Status fills in.
func (c *Client) StatusDetail(ctx context.Context) (*Status, error) {
	var st Status
	q := url.Values{"detail": {"true"}}
	if err := c.do(ctx, call{op: "status", method: http.MethodGet, path: "/v1/status", query: q, out: &st}); err != nil {
		return nil, err
	}
	return &st, nil
}

// CreateCampaign creates a DRAFT campaign from spec (POST /v1/campaigns).
// The daemon validates spec: EINVALID names the bad field.
func (c *Client) CreateCampaign(ctx context.Context, spec core.CampaignSpec) (*core.Campaign, error) {
	var out core.Campaign
	if err := c.do(ctx, call{op: "create campaign", method: http.MethodPost, path: "/v1/campaigns", in: &spec, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Campaign returns one campaign with its stats; ENOTFOUND if there is none.
func (c *Client) Campaign(ctx context.Context, id int64) (*core.Campaign, error) {
	var out core.Campaign
	if err := c.do(ctx, call{op: "campaign", method: http.MethodGet, path: campaignPath(id, ""), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Campaigns returns every campaign as the daemon orders them.
func (c *Client) Campaigns(ctx context.Context) ([]*core.Campaign, error) {
	var out []*core.Campaign
	if err := c.do(ctx, call{op: "campaigns", method: http.MethodGet, path: "/v1/campaigns", out: &out}); err != nil {
		return nil, err
	}
	return out, nil
}

// ChangeCampaign applies activate, pause, resume or cancel and returns the
// campaign after it. Any other action is EINVALID without asking the
// daemon (execute and retry have their own methods); an illegal move is
// the daemon's ECONFLICT naming both states. core.WithAllowMissingAttrs in
// ctx is carried to the daemon.
func (c *Client) ChangeCampaign(ctx context.Context, id int64, a core.Action) (*core.Campaign, error) {
	switch a {
	case core.ActionActivate, core.ActionPause, core.ActionResume, core.ActionCancel:
	default:
		return nil, core.Errorf(core.EINVALID, "unknown campaign action %q: want activate, pause, resume or cancel", a)
	}
	var out core.Campaign
	if err := c.do(ctx, call{op: string(a) + " campaign", method: http.MethodPost, path: campaignPath(id, "/"+string(a)),
		query: allowMissingAttrsQuery(ctx), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Execute queues every PENDING recipient of an ACTIVE campaign and returns
// at once; no email is sent by it. Like ChangeCampaign's activate, it
// carries core.WithAllowMissingAttrs from ctx.
func (c *Client) Execute(ctx context.Context, id int64) (*core.ExecuteResult, error) {
	var out core.ExecuteResult
	if err := c.do(ctx, call{op: "execute campaign", method: http.MethodPost, path: campaignPath(id, "/execute"),
		query: allowMissingAttrsQuery(ctx), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// allowMissingAttrsQuery carries core.WithAllowMissingAttrs to the daemon.
func allowMissingAttrsQuery(ctx context.Context) url.Values {
	if core.AllowMissingAttrs(ctx) {
		return url.Values{"allow_missing_attrs": {"true"}}
	}
	return nil
}

// Stats returns a campaign's recipient counters.
func (c *Client) Stats(ctx context.Context, id int64) (*core.Stats, error) {
	var out core.Stats
	if err := c.do(ctx, call{op: "campaign stats", method: http.MethodGet, path: campaignPath(id, "/stats"), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Retry requeues a campaign's FAILED recipients, only those of errorClass
// when it is not empty and of reply code code when it is not 0.
func (c *Client) Retry(ctx context.Context, id int64, errorClass string, code int) (*core.RetryResult, error) {
	var out core.RetryResult
	if err := c.do(ctx, call{op: "retry campaign", method: http.MethodPost, path: campaignPath(id, "/retry"),
		in: &RetryRequest{ErrorClass: errorClass, Code: code}, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Progress returns a campaign's percent done, rate and ETA.
func (c *Client) Progress(ctx context.Context, id int64) (*core.Progress, error) {
	var out core.Progress
	if err := c.do(ctx, call{op: "campaign progress", method: http.MethodGet, path: campaignPath(id, "/progress"), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Failures returns a campaign's failure breakdown.
func (c *Client) Failures(ctx context.Context, id int64) (*core.FailureReport, error) {
	var out core.FailureReport
	if err := c.do(ctx, call{op: "campaign failures", method: http.MethodGet, path: campaignPath(id, "/failures"), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// ImportRecipients streams r to the daemon as the request body (chunked; r
// is read as it is sent, never held in memory, and never closed) and
// returns what the import did. A body past the daemon's import limit is
// ETOOLARGE. A nil r imports nothing.
func (c *Client) ImportRecipients(ctx context.Context, id int64, format core.ImportFormat, r io.Reader) (*core.ImportResult, error) {
	ctype := "text/csv"
	if format == core.FormatJSONL {
		ctype = "application/x-ndjson"
	}
	if r == nil {
		r = strings.NewReader("")
	}
	var out core.ImportResult
	if err := c.do(ctx, call{op: "import recipients", method: http.MethodPost, path: campaignPath(id, "/recipients:import"),
		query: url.Values{"format": {string(format)}}, stream: r, ctype: ctype, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// AddRecipient adds one recipient to a campaign.
func (c *Client) AddRecipient(ctx context.Context, id int64, in core.RecipientInput) (*core.ImportResult, error) {
	var out core.ImportResult
	if err := c.do(ctx, call{op: "add recipient", method: http.MethodPost, path: campaignPath(id, "/recipients"), in: &in, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Recipients lists a campaign's recipients matching f, a page at a time
// (f.AfterID is the last id of the previous page).
func (c *Client) Recipients(ctx context.Context, id int64, f core.RecipientFilter) ([]*core.Recipient, error) {
	q := url.Values{}
	if f.Status != "" {
		q.Set("status", string(f.Status))
	}
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.AfterID != 0 {
		q.Set("after_id", strconv.FormatInt(f.AfterID, 10))
	}
	var out []*core.Recipient
	if err := c.do(ctx, call{op: "list recipients", method: http.MethodGet, path: campaignPath(id, "/recipients"), query: q, out: &out}); err != nil {
		return nil, err
	}
	return out, nil
}

// RecipientDetail returns one recipient of a campaign by address with its
// recorded delivery events (GET /v1/campaigns/{id}/recipients/{email}).
// An empty email is EINVALID without asking the daemon; otherwise the
// errors are Engine.RecipientDetail's.
func (c *Client) RecipientDetail(ctx context.Context, id int64, email string) (*core.RecipientDetail, error) {
	if email == "" {
		return nil, core.Errorf(core.EINVALID, "email: required")
	}
	var out core.RecipientDetail
	if err := c.do(ctx, call{op: "show recipient", method: http.MethodGet,
		path: campaignPath(id, "/recipients/"+url.PathEscape(email)), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Executions lists execution records, of one campaign or (id 0) of all.
func (c *Client) Executions(ctx context.Context, id int64) ([]*core.Execution, error) {
	q := url.Values{}
	if id != 0 {
		q.Set("campaign", strconv.FormatInt(id, 10))
	}
	var out []*core.Execution
	if err := c.do(ctx, call{op: "list executions", method: http.MethodGet, path: "/v1/executions", query: q, out: &out}); err != nil {
		return nil, err
	}
	return out, nil
}

// Verify asks the daemon to audit the database's invariants for one
// campaign (id > 0) or all; see core.Engine.Verify.
func (c *Client) Verify(ctx context.Context, id int64) (*core.VerifyReport, error) {
	q := url.Values{}
	if id != 0 {
		q.Set("campaign", strconv.FormatInt(id, 10))
	}
	var out core.VerifyReport
	if err := c.do(ctx, call{op: "verify", method: http.MethodGet, path: "/v1/verify", query: q, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Backup asks the daemon to write a verified copy of its database to dest,
// an absolute path the daemon's user may write (POST /v1/backup). ECONFLICT
// when dest exists and force is false; EINVALID for a relative dest.
func (c *Client) Backup(ctx context.Context, dest string, force bool) (*BackupResult, error) {
	var out BackupResult
	if err := c.do(ctx, call{op: "backup", method: http.MethodPost, path: "/v1/backup", in: &BackupRequest{Dest: dest, Force: force}, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// LoginLink asks the daemon for a one-time dashboard login link (POST
// /v1/dashboard/login-link). EUNAVAILABLE when the daemon has no admin
// listener.
func (c *Client) LoginLink(ctx context.Context) (*LoginLink, error) {
	var out LoginLink
	if err := c.do(ctx, call{op: "dashboard login link", method: http.MethodPost, path: "/v1/dashboard/login-link", out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Tick asks the daemon to run one tick now, of the given campaigns only
// when any are given, recorded with trigger (empty: core.TriggerSocket).
// Cancelling ctx stops waiting for the answer but not the tick: the daemon
// lets it finish and record its outcomes.
func (c *Client) Tick(ctx context.Context, trigger core.TickTrigger, campaigns ...int64) (*core.TickResult, error) {
	var out core.TickResult
	if err := c.do(ctx, call{op: "tick", method: http.MethodPost, path: "/v1/tick", in: &TickRequest{Trigger: trigger, Campaigns: campaigns}, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Ticks lists the most recent tick records (limit 0: the daemon's default).
func (c *Client) Ticks(ctx context.Context, limit int) ([]*core.TickRecord, error) {
	q := url.Values{}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out []*core.TickRecord
	if err := c.do(ctx, call{op: "list ticks", method: http.MethodGet, path: "/v1/ticks", query: q, out: &out}); err != nil {
		return nil, err
	}
	return out, nil
}

// Queue summarises each campaign's queue.
func (c *Client) Queue(ctx context.Context) ([]*core.QueueSummary, error) {
	var out []*core.QueueSummary
	if err := c.do(ctx, call{op: "queue", method: http.MethodGet, path: "/v1/queue", out: &out}); err != nil {
		return nil, err
	}
	return out, nil
}

// Quotas returns the senders' quotas.
func (c *Client) Quotas(ctx context.Context) ([]*core.QuotaStatus, error) {
	var out []*core.QuotaStatus
	if err := c.do(ctx, call{op: "quotas", method: http.MethodGet, path: "/v1/quotas", out: &out}); err != nil {
		return nil, err
	}
	return out, nil
}

// UnblockSender lifts a sender's quota block (see
// core.Engine.UnblockSender). An empty sender is EINVALID without asking
// the daemon.
func (c *Client) UnblockSender(ctx context.Context, sender string) (*core.SenderUnblock, error) {
	if sender == "" {
		return nil, core.Errorf(core.EINVALID, "sender: required")
	}
	var out core.SenderUnblock
	if err := c.do(ctx, call{op: "unblock sender", method: http.MethodPost, path: "/v1/senders/" + url.PathEscape(sender) + "/unblock", out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Suppress puts an address on the suppression list.
func (c *Client) Suppress(ctx context.Context, s core.Suppression) error {
	return c.do(ctx, call{op: "suppress", method: http.MethodPost, path: "/v1/suppressions", in: &s})
}

// Unsuppress takes an address off the suppression list. An empty email is
// EINVALID without asking the daemon.
func (c *Client) Unsuppress(ctx context.Context, email string) error {
	if email == "" {
		return core.Errorf(core.EINVALID, "email: required")
	}
	return c.do(ctx, call{op: "unsuppress", method: http.MethodDelete, path: "/v1/suppressions/" + url.PathEscape(email)})
}

// ImportSuppressions streams r to the daemon as one request (chunked; r is
// read as it is sent, never held in memory, and never closed) and returns
// what the import did; format "" lets the daemon tell CSV from a plain
// list by the first line. A body past the daemon's import limit is
// ETOOLARGE. A nil r imports nothing.
func (c *Client) ImportSuppressions(ctx context.Context, format core.ImportFormat, r io.Reader, reason string) (*core.ImportResult, error) {
	ctype := "text/plain"
	if format == core.FormatCSV {
		ctype = "text/csv"
	}
	if r == nil {
		r = strings.NewReader("")
	}
	q := url.Values{}
	if format != "" {
		q.Set("format", string(format))
	}
	if reason != "" {
		q.Set("reason", reason)
	}
	var out core.ImportResult
	if err := c.do(ctx, call{op: "import suppressions", method: http.MethodPost, path: "/v1/suppressions:import",
		query: q, stream: r, ctype: ctype, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Suppressions lists the suppression list (limit 0: the daemon's default).
func (c *Client) Suppressions(ctx context.Context, limit int) ([]*core.Suppression, error) {
	q := url.Values{}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out []*core.Suppression
	if err := c.do(ctx, call{op: "list suppressions", method: http.MethodGet, path: "/v1/suppressions", query: q, out: &out}); err != nil {
		return nil, err
	}
	return out, nil
}

// checkUTF8 returns an EINVALID error naming, by its JSON path, the first
// string in v that is not valid UTF-8. encoding/json would silently replace
// its bad bytes with U+FFFD, and the daemon would then accept what
// standalone mode refuses.
func checkUTF8(v reflect.Value, path string) error {
	join := func(name string) string {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	switch v.Kind() {
	case reflect.String:
		if !utf8.ValidString(v.String()) {
			if path == "" {
				path = "request"
			}
			return core.Errorf(core.EINVALID, "%s: not valid UTF-8", path)
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return checkUTF8(v.Elem(), path)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if err := checkUTF8(v.Field(i), join(name)); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return nil // []byte is sent as base64
		}
		for i := 0; i < v.Len(); i++ {
			if err := checkUTF8(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			k := it.Key()
			if k.Kind() == reflect.String && !utf8.ValidString(k.String()) {
				return core.Errorf(core.EINVALID, "%s: key %q is not valid UTF-8", path, k.String())
			}
			if err := checkUTF8(it.Value(), join(fmt.Sprint(k.Interface()))); err != nil {
				return err
			}
		}
	}
	return nil
}
