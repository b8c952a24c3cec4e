package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/internal/httpx"
)

// handlerFunc is a route handler; a returned error becomes the error answer.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// routes builds the /v1 route table (see the package documentation).
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h handlerFunc) {
		mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r); err != nil {
				s.writeError(w, r, err)
			}
		}))
	}
	handle("GET /v1/status", s.status)
	handle("POST /v1/campaigns", s.createCampaign)
	handle("GET /v1/campaigns", s.campaigns)
	handle("GET /v1/campaigns/{id}", byID(s.svc.Campaign))
	handle("PATCH /v1/campaigns/{id}", s.editCampaign)
	handle("DELETE /v1/campaigns/{id}", s.deleteCampaign)
	handle("POST /v1/campaigns/{id}/clone", s.cloneCampaign)
	handle("GET /v1/campaigns/{id}/preview", s.preview)
	handle("POST /v1/campaigns/{id}/test", s.testSend)
	handle("POST /v1/campaigns/{id}/{action}", s.changeCampaign)
	handle("POST /v1/campaigns/{id}/execute", s.execute)
	handle("GET /v1/campaigns/{id}/stats", byID(s.svc.Stats))
	handle("POST /v1/campaigns/{id}/retry", s.retry)
	handle("GET /v1/campaigns/{id}/progress", byID(s.svc.Progress))
	handle("GET /v1/campaigns/{id}/failures", byID(s.svc.Failures))
	handle("POST /v1/campaigns/{id}/recipients", s.addRecipient)
	handle("POST /v1/campaigns/{id}/recipients:import", s.importRecipients)
	handle("GET /v1/campaigns/{id}/recipients", s.recipients)
	handle("GET /v1/campaigns/{id}/recipients/{email}", s.recipientDetail)
	handle("GET /v1/executions", s.executions)
	handle("POST /v1/tick", s.tick)
	handle("GET /v1/ticks", s.ticks)
	handle("GET /v1/queue", listOf(s.svc.Queue))
	handle("GET /v1/quotas", listOf(s.svc.Quotas))
	handle("POST /v1/senders/{name}/unblock", s.unblockSender)
	handle("GET /v1/verify", s.verify)
	handle("POST /v1/backup", s.backup)
	handle("POST /v1/dashboard/login-link", s.loginLink)
	handle("GET /v1/suppressions", s.suppressions)
	handle("POST /v1/suppressions", s.suppress)
	handle("DELETE /v1/suppressions/{email}", s.unsuppress)
	handle("POST /v1/suppressions:import", s.importSuppressions)

	return httpx.Routes(mux, func(r *http.Request) string {
		return fmt.Sprintf("no such control API route: %s %s", r.Method, r.URL.Path)
	})
}

// ---- handlers ----

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "detail")
	if err != nil {
		return err
	}
	detail := false
	if v := q.Get("detail"); v != "" {
		if detail, err = strconv.ParseBool(v); err != nil {
			return core.Errorf(core.EINVALID, "query parameter detail: %q is not a boolean", v)
		}
	}
	st := &Status{PID: os.Getpid(), Version: s.cfg.Version, Started: s.started, Daemon: true}
	// Without detail it is the cheap answer every CLI command asks to
	// learn whether a daemon runs.
	if detail && s.cfg.Status != nil {
		if err := s.cfg.Status(r.Context(), st); err != nil {
			return fmt.Errorf("status: %w", err)
		}
	}
	return writeJSON(w, http.StatusOK, st)
}

func (s *Server) createCampaign(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	var spec core.CampaignSpec
	if err := s.decodeJSON(w, r, &spec, false); err != nil {
		return err
	}
	c, err := s.svc.CreateCampaign(r.Context(), spec)
	if err != nil {
		return err
	}
	if c != nil {
		w.Header().Set("Location", fmt.Sprintf("/v1/campaigns/%d", c.ID))
	}
	return writeJSON(w, http.StatusCreated, c)
}

func (s *Server) campaigns(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	cs, err := s.svc.Campaigns(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(cs))
}

// campaignActions are the actions POST /v1/campaigns/{id}/{action} takes;
// execute and retry have routes of their own.
var campaignActions = []core.Action{core.ActionActivate, core.ActionPause, core.ActionResume, core.ActionCancel}

func (s *Server) changeCampaign(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	a := core.Action(r.PathValue("action"))
	if !slices.Contains(campaignActions, a) {
		return core.Errorf(core.ENOTFOUND, "no campaign action %q: want activate, pause, resume or cancel", a)
	}
	var allowed []string
	if a == core.ActionActivate {
		allowed = append(allowed, "allow_missing_attrs")
	}
	q, err := query(r, allowed...)
	if err != nil {
		return err
	}
	if err := s.noBody(w, r); err != nil {
		return err
	}
	ctx, err := allowMissingAttrs(r.Context(), q)
	if err != nil {
		return err
	}
	c, err := s.svc.ChangeCampaign(ctx, id, a)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *Server) execute(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	q, err := query(r, "allow_missing_attrs")
	if err != nil {
		return err
	}
	if err := s.noBody(w, r); err != nil {
		return err
	}
	ctx, err := allowMissingAttrs(r.Context(), q)
	if err != nil {
		return err
	}
	res, err := s.svc.Execute(ctx, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

func (s *Server) retry(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if _, err := query(r); err != nil {
		return err
	}
	var req RetryRequest
	if err := s.decodeJSON(w, r, &req, true); err != nil {
		return err
	}
	res, err := s.svc.Retry(r.Context(), id, req.ErrorClass, req.Code)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

func (s *Server) addRecipient(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if _, err := query(r); err != nil {
		return err
	}
	var in core.RecipientInput
	if err := s.decodeJSON(w, r, &in, false); err != nil {
		return err
	}
	res, err := s.svc.AddRecipient(r.Context(), id, in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

// importFormats maps the media types an import may declare instead of
// ?format= to formats.
var importFormats = map[string]core.ImportFormat{
	"text/csv":             core.FormatCSV,
	"application/x-ndjson": core.FormatJSONL,
	"application/jsonl":    core.FormatJSONL,
	"application/ndjson":   core.FormatJSONL,
}

func (s *Server) importRecipients(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	q, err := query(r, "format")
	if err != nil {
		return err
	}
	format := core.ImportFormat(strings.ToLower(q.Get("format")))
	if format == "" {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		format = importFormats[mt]
		if format == "" {
			return core.Errorf(core.EINVALID, "query parameter format: required (csv or jsonl)")
		}
	}
	if format != core.FormatCSV && format != core.FormatJSONL {
		return core.Errorf(core.EINVALID, "query parameter format: %q is not csv or jsonl", q.Get("format"))
	}
	if r.ContentLength > s.cfg.MaxImportBytes {
		return httpx.TooLarge("recipients import", s.cfg.MaxImportBytes)
	}
	body := s.newBody(w, r, s.cfg.MaxImportBytes, "recipients import")
	res, err := s.svc.ImportRecipients(r.Context(), id, format, body)
	body.Finish()
	if berr := body.Err(); berr != nil {
		// The body's failure explains whatever the service made of it.
		return berr
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

func (s *Server) recipients(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	q, err := query(r, "status", "limit", "after_id")
	if err != nil {
		return err
	}
	var f core.RecipientFilter
	if v := q.Get("status"); v != "" {
		if f.Status, err = core.ParseRecipientStatus(v); err != nil {
			return core.Errorf(core.EINVALID, "query parameter %s", core.ErrorMessage(err))
		}
	}
	if f.Limit, err = listLimit(q); err != nil {
		return err
	}
	if f.AfterID, err = queryInt(q, "after_id", 0, 64); err != nil {
		return err
	}
	rs, err := s.svc.Recipients(r.Context(), id, f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(rs))
}

func (s *Server) recipientDetail(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if _, err := query(r); err != nil {
		return err
	}
	d, err := s.svc.RecipientDetail(r.Context(), id, r.PathValue("email"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) executions(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "campaign")
	if err != nil {
		return err
	}
	id, err := queryInt(q, "campaign", 1, 64)
	if err != nil {
		return err
	}
	es, err := s.svc.Executions(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(es))
}

func (s *Server) verify(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "campaign")
	if err != nil {
		return err
	}
	id, err := queryInt(q, "campaign", 1, 64)
	if err != nil {
		return err
	}
	rep, err := s.svc.Verify(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

func (s *Server) backup(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	var req BackupRequest
	if err := s.decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if !filepath.IsAbs(req.Dest) {
		return core.Errorf(core.EINVALID, "dest: %q is not an absolute path", req.Dest)
	}
	if s.cfg.Backup == nil {
		return core.Errorf(core.EUNAVAILABLE, "this daemon does not make backups")
	}
	res, err := s.cfg.Backup(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

func (s *Server) loginLink(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	if s.cfg.LoginLink == nil {
		return core.Errorf(core.EUNAVAILABLE, "this daemon has no dashboard: set [admin] listen (and admin_token) in its configuration and restart it")
	}
	link, err := s.cfg.LoginLink(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, link)
}

// tickTriggers are the triggers a tick request may name.
var tickTriggers = []core.TickTrigger{core.TriggerCLI, core.TriggerSocket, core.TriggerScheduler, core.TriggerHTTP}

func (s *Server) tick(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	var req TickRequest
	if err := s.decodeJSON(w, r, &req, true); err != nil {
		return err
	}
	if req.Trigger == "" {
		req.Trigger = core.TriggerSocket
	}
	if !slices.Contains(tickTriggers, req.Trigger) {
		return core.Errorf(core.EINVALID, "trigger: %q is not cli, socket, scheduler or http", req.Trigger)
	}
	// A tick records every outcome it starts: the caller going away (Ctrl-C,
	// a cron timeout) must not cancel it. The engine bounds it with
	// tick_timeout.
	res, err := s.svc.Tick(context.WithoutCancel(r.Context()), req.Trigger, req.Campaigns...)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

func (s *Server) ticks(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	ts, err := s.svc.Ticks(r.Context(), limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(ts))
}

func (s *Server) unblockSender(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	if err := s.noBody(w, r); err != nil {
		return err
	}
	u, err := s.svc.UnblockSender(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

func (s *Server) suppressions(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	ss, err := s.svc.Suppressions(r.Context(), limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(ss))
}

func (s *Server) suppress(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	var sup core.Suppression
	if err := s.decodeJSON(w, r, &sup, false); err != nil {
		return err
	}
	if err := s.svc.Suppress(r.Context(), sup); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) unsuppress(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	if err := s.svc.Unsuppress(r.Context(), r.PathValue("email")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// importSuppressions streams the body onto the suppression list, like a
// recipients import: the body is never held whole, and its failure (too
// large, stalled) explains whatever the service made of it.
func (s *Server) importSuppressions(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "format", "reason")
	if err != nil {
		return err
	}
	format := core.ImportFormat(strings.ToLower(q.Get("format")))
	if format != "" && format != core.FormatCSV && format != core.FormatList {
		return core.Errorf(core.EINVALID, "query parameter format: %q is not csv or list", q.Get("format"))
	}
	if r.ContentLength > s.cfg.MaxImportBytes {
		return httpx.TooLarge("suppressions import", s.cfg.MaxImportBytes)
	}
	body := s.newBody(w, r, s.cfg.MaxImportBytes, "suppressions import")
	res, err := s.svc.ImportSuppressions(r.Context(), format, body, q.Get("reason"))
	body.Finish()
	if berr := body.Err(); berr != nil {
		return berr
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

// ---- request parsing ----

// pathID parses the {id} path parameter: a positive integer, or EINVALID
// naming the parameter.
func pathID(r *http.Request) (int64, error) {
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 1 {
		return 0, core.Errorf(core.EINVALID, "path parameter id: %q is not a campaign id (want a positive integer)", v)
	}
	return id, nil
}

// query returns the request's query parameters, refusing any not in
// allowed (a misspelt filter must not silently list everything) and any
// given twice.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, core.Errorf(core.EINVALID, "query string: %v", err)
	}
	for k, vs := range q {
		if !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				return nil, core.Errorf(core.EINVALID, "query parameter %s: this route takes no query parameters", k)
			}
			return nil, core.Errorf(core.EINVALID, "query parameter %s: unknown (this route takes %s)", k, strings.Join(allowed, ", "))
		}
		if len(vs) > 1 {
			return nil, core.Errorf(core.EINVALID, "query parameter %s: given %d times", k, len(vs))
		}
	}
	return q, nil
}

// allowMissingAttrs reads the optional allow_missing_attrs parameter of
// activate, execute and edit (see core.WithAllowMissingAttrs): "true" or
// "false"; anything else is EINVALID.
func allowMissingAttrs(ctx context.Context, q url.Values) (context.Context, error) {
	if !q.Has("allow_missing_attrs") {
		return ctx, nil
	}
	v, err := strconv.ParseBool(q.Get("allow_missing_attrs"))
	if err != nil {
		return nil, core.Errorf(core.EINVALID, "query parameter allow_missing_attrs: %q is not true or false", q.Get("allow_missing_attrs"))
	}
	if v {
		ctx = core.WithAllowMissingAttrs(ctx)
	}
	return ctx, nil
}

// queryLimit reads the query string of a listing that takes only an
// optional limit.
func queryLimit(r *http.Request) (int, error) {
	q, err := query(r, "limit")
	if err != nil {
		return 0, err
	}
	return listLimit(q)
}

// listLimit reads the optional limit parameter of a listing: absent or 0
// is 0 (the service's default), anything else must be in core.ListLimit's
// range, EINVALID naming the parameter.
func listLimit(q url.Values) (int, error) {
	limit, err := queryInt(q, "limit", 0, strconv.IntSize)
	if err != nil || limit == 0 {
		return 0, err
	}
	return core.ListLimit("query parameter limit", int(limit))
}

// queryInt parses an optional integer query parameter that must be at least
// least and fit in bits; absent or empty is 0. A bad value is EINVALID naming
// the parameter.
func queryInt(q url.Values, name string, least int64, bits int) (int64, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, bits)
	if err != nil || n < least {
		return 0, core.Errorf(core.EINVALID, "query parameter %s: %q is not an integer of at least %d", name, v, least)
	}
	return n, nil
}

// decodeJSON decodes the request body into v strictly: one JSON value,
// no unknown fields, nothing after it, at most MaxBodyBytes. An empty body
// leaves v alone when optional and is EINVALID otherwise. Errors are
// EINVALID naming the problem (the unknown field, the offset of a syntax
// error) or ETOOLARGE.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	// Read it whole (it is bounded) to refuse non-UTF-8 before decoding:
	// encoding/json would silently turn bad bytes into U+FFFD.
	data, err := httpx.ReadBody(w, r, s.cfg.MaxBodyBytes, "request body", s.cfg.BodyReadTimeout)
	if err != nil {
		return err
	}
	if !utf8.Valid(data) {
		return core.Errorf(core.EINVALID, "request body: not valid UTF-8")
	}
	if bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("null")) {
		// encoding/json decodes null into a struct as nothing at all.
		return core.Errorf(core.EINVALID, "request body: a JSON object is required, not null")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			if optional {
				return nil
			}
			return core.Errorf(core.EINVALID, "request body: a JSON object is required")
		}
		return jsonError(err)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return core.Errorf(core.EINVALID, "request body: unexpected data after the JSON object")
	}
	return nil
}

// noBody refuses a request body on a route that takes none.
func (s *Server) noBody(w http.ResponseWriter, r *http.Request) error {
	if r.ContentLength == 0 {
		return nil
	}
	body := s.newBody(w, r, 1, "request body")
	defer body.Finish()
	var b [1]byte
	if n, _ := io.ReadFull(body, b[:]); n > 0 {
		return core.Errorf(core.EINVALID, "request body: this route takes none")
	}
	if err := body.Err(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// jsonError turns an encoding/json error into an EINVALID naming the
// problem.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return core.Errorf(core.EINVALID, "request body: invalid JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return core.Errorf(core.EINVALID, "request body: a JSON %s cannot be a %s", typ.Value, typ.Type)
		}
		return core.Errorf(core.EINVALID, "request body: field %s: a JSON %s cannot be a %s", field, typ.Value, typ.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return core.Errorf(core.EINVALID, "request body: truncated JSON")
	default:
		return core.Errorf(core.EINVALID, "request body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
}

// newBody wraps r.Body with limit and the idle deadline BodyReadTimeout;
// see httpx.NewBody.
func (s *Server) newBody(w http.ResponseWriter, r *http.Request, limit int64, what string) *httpx.Body {
	return httpx.NewBody(w, r, limit, what, s.cfg.BodyReadTimeout)
}

// ---- responses ----

// list makes a nil slice encode as [] rather than null.
func list[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

// writeJSON is httpx.WriteJSON, under the name every handler uses.
var writeJSON = httpx.WriteJSON

// writeError answers with err's code, mapped to a status by httpx.Status,
// and its operator-facing message. Internal errors are logged with everything
// known about them; the rest at debug level.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := core.ErrorCode(err)
	msg := core.ErrorMessage(err)
	if code == core.EINTERNAL || !httpx.KnownCode(code) {
		s.log.Error("control request failed", "method", r.Method, "path", r.URL.Path,
			"actor", core.Actor(r.Context()), "code", code, "error", errorDetail(err))
	} else {
		s.log.Debug("control request refused", "method", r.Method, "path", r.URL.Path,
			"code", code, "error", msg)
	}
	httpx.WriteError(w, code, msg)
}

// errorDetail is err's text plus the causes a *core.Error keeps out of its
// message, for the log.
func errorDetail(err error) string {
	d := err.Error()
	var ce *core.Error
	if errors.As(err, &ce) && ce.Err != nil && ce.Message != "" {
		if ce.Op != "" {
			d += " [op " + ce.Op + "]"
		}
		d += " (cause: " + ce.Err.Error() + ")"
	}
	return d
}

// listOf is the handler of a GET that reads one whole list: no query
// parameters, the service's answer as a JSON list (never null).
func listOf[T any](get func(context.Context) ([]T, error)) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if _, err := query(r); err != nil {
			return err
		}
		v, err := get(r.Context())
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, list(v))
	}
}

// byID is the handler of a GET that reads one campaign's resource: the id
// from the path, no query parameters, the service's answer as JSON.
func byID[T any](get func(context.Context, int64) (T, error)) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		if _, err := query(r); err != nil {
			return err
		}
		v, err := get(r.Context(), id)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, v)
	}
}
