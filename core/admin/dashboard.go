package admin

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/internal/httpx"
)

// Engine is what the dashboard reads and does: *core.Engine, the same
// methods the CLI calls, so validations and refusals are the same.
type Engine interface {
	Campaigns(ctx context.Context) ([]*core.Campaign, error)
	Campaign(ctx context.Context, id int64) (*core.Campaign, error)
	Progress(ctx context.Context, id int64) (*core.Progress, error)
	Minutes(ctx context.Context, id int64, n int) ([]core.MinuteCount, error)
	Failures(ctx context.Context, id int64) (*core.FailureReport, error)
	Executions(ctx context.Context, id int64) ([]*core.Execution, error)
	RecipientDetail(ctx context.Context, id int64, email string) (*core.RecipientDetail, error)
	Queue(ctx context.Context) ([]*core.QueueSummary, error)
	Quotas(ctx context.Context) ([]*core.QuotaStatus, error)
	Ticks(ctx context.Context, limit int) ([]*core.TickRecord, error)
	ChangeCampaign(ctx context.Context, id int64, a core.Action) (*core.Campaign, error)
	Execute(ctx context.Context, id int64) (*core.ExecuteResult, error)
	Retry(ctx context.Context, id int64, errorClass string, code int) (*core.RetryResult, error)
}

var _ Engine = (*core.Engine)(nil)

// Dashboard page sizes.
const (
	// ChartMinutes is the span of a campaign's chart: one bar a minute.
	ChartMinutes = 60
	// recentTicks is how many ticks the queue page lists.
	recentTicks = 20
	// pageExecutions is how many executions a campaign page lists.
	pageExecutions = 20
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Dashboard is the admin listener's web pages: campaigns, a campaign, the
// queue, and the actions on a campaign, each behind a confirmation, for a
// logged-in session (see Auth). Server-rendered; a few lines of script
// refresh the live parts of a page, which reads the same without it.
type Dashboard struct {
	eng   Engine
	auth  *Auth
	pages map[string]*template.Template
	mux   *http.ServeMux
}

// NewDashboard returns the dashboard over eng, logging in through auth.
func NewDashboard(eng Engine, auth *Auth) *Dashboard {
	d := &Dashboard{eng: eng, auth: auth, pages: parsePages(), mux: http.NewServeMux()}
	static, _ := fs.Sub(staticFS, "static") // the directory is embedded
	d.mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler(http.FileServerFS(static))))
	d.mux.HandleFunc("GET /login", d.loginPage)
	d.mux.HandleFunc("POST /login", d.loginCheck)
	d.mux.Handle("POST /logout", d.post(d.logout))
	d.mux.Handle("GET /{$}", d.get(d.campaignsPage))
	d.mux.Handle("GET /campaigns/{id}", d.get(d.campaignPage))
	d.mux.Handle("GET /campaigns/{id}/confirm", d.get(d.confirmPage))
	d.mux.Handle("POST /campaigns/{id}/action", d.post(d.action))
	d.mux.Handle("GET /queue", d.get(d.queuePage))
	d.mux.Handle("/", d.get(d.notFound))
	return d
}

// ServeHTTP serves the dashboard.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Only this origin's own files; no framing (clickjacking); no
	// referrer (a one-time link's token stays out of other sites' logs).
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	d.mux.ServeHTTP(w, r)
}

// page is what every page's layout needs.
type page struct {
	Title   string
	Nav     string
	CSRF    string
	Flash   string
	FlashOK bool
	Data    any
}

// pageFunc renders one page for a session: it returns the template and
// its data, or an error shown as an error page.
type pageFunc func(w http.ResponseWriter, r *http.Request, s *session) (name string, p *page, err error)

// get serves a page to a session; without one it redirects to the login
// page, remembering where the browser was going.
func (d *Dashboard) get(fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := d.auth.session(r)
		if s == nil {
			redirectLogin(w, r)
			return
		}
		name, p, err := fn(w, r, s)
		if err != nil {
			d.renderError(w, s, err)
			return
		}
		if name == "" {
			return // fn answered
		}
		p.CSRF = s.csrf
		p.Flash, p.FlashOK = d.auth.takeFlash(s)
		d.render(w, http.StatusOK, name, p)
	})
}

// post serves a change: a session and its CSRF token are required (no
// session: to the login page; a wrong token: 403, nothing done).
func (d *Dashboard) post(fn func(w http.ResponseWriter, r *http.Request, s *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		s := d.auth.session(r)
		if s == nil {
			redirectLogin(w, r)
			return
		}
		if !s.checkCSRF(r) {
			d.render(w, http.StatusForbidden, "error", &page{Title: "Refused", CSRF: s.csrf, Data: errorData{
				Message: "This form is stale or did not come from this dashboard (its CSRF token does not match your session). Reload the page and try again.",
			}})
			return
		}
		fn(w, r, s)
	})
}

// redirectLogin sends the browser to the login page, with the page it
// asked for as next (a GET's path; a POST's lands on the campaigns).
func redirectLogin(w http.ResponseWriter, r *http.Request) {
	target := "/login"
	if r.Method == http.MethodGet && r.URL.Path != "/" {
		target += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// safeNext keeps next to a path on this listener (no open redirect).
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

// loginData is the login page's.
type loginData struct {
	Next    string
	Message string
	HasPass bool
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if link := r.URL.Query().Get("link"); link != "" {
		d.loginWith(w, r, next, func() bool { return d.auth.useLink(link) },
			"This login link is not valid: it was used already, it expired, or the daemon restarted since. Run `campaignd dashboard` for a new one.")
		return
	}
	if d.auth.session(r) != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	d.render(w, http.StatusOK, "login", &page{Title: "Log in", Data: loginData{Next: next, HasPass: len(d.auth.token) > 0}})
}

func (d *Dashboard) loginCheck(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	next := safeNext(r.PostFormValue("next"))
	tok := r.PostFormValue("token")
	d.loginWith(w, r, next, func() bool { return d.auth.checkToken(tok) },
		"Wrong token. Use the [admin] admin_token of the daemon's configuration, or run `campaignd dashboard` for a one-time link.")
}

// loginWith starts a session when ok says the credential holds, else
// answers the login page with msg, after the rate limit's check: a
// blocked address is refused before its credential is looked at.
func (d *Dashboard) loginWith(w http.ResponseWriter, r *http.Request, next string, ok func() bool, msg string) {
	addr := clientAddr(r)
	data := loginData{Next: next, HasPass: len(d.auth.token) > 0}
	if wait := d.auth.limit.blocked(addr); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+1)))
		data.Message = fmt.Sprintf("Too many wrong tokens from %s: try again in %s.", addr, wait.Round(time.Second))
		d.render(w, http.StatusTooManyRequests, "login", &page{Title: "Log in", Data: data})
		return
	}
	if !ok() {
		d.auth.limit.fail(addr)
		data.Message = msg
		d.render(w, http.StatusUnauthorized, "login", &page{Title: "Log in", Data: data})
		return
	}
	d.auth.limit.succeed(addr)
	s := d.auth.newSession()
	setCookie(w, r, s.id, int(SessionTTL.Seconds()))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request, s *session) {
	d.auth.endSession(s)
	setCookie(w, r, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// campaignRow is one line of the campaigns page.
type campaignRow struct {
	C *core.Campaign
	P *core.Progress
}

func (d *Dashboard) campaignsPage(w http.ResponseWriter, r *http.Request, s *session) (string, *page, error) {
	ctx := r.Context()
	cs, err := d.eng.Campaigns(ctx)
	if err != nil {
		return "", nil, err
	}
	rows := make([]campaignRow, 0, len(cs))
	for _, c := range cs {
		p, err := d.eng.Progress(ctx, c.ID)
		if err != nil {
			return "", nil, err
		}
		rows = append(rows, campaignRow{C: c, P: p})
	}
	return "campaigns", &page{Title: "Campaigns", Nav: "campaigns", Data: rows}, nil
}

// campaignData is a campaign page's.
type campaignData struct {
	C          *core.Campaign
	P          *core.Progress
	Chart      template.HTML
	Failures   *core.FailureReport
	Executions []*core.Execution
	MoreExec   int
	Queue      *core.QueueSummary
	Schedule   *scheduleView
	Actions    []core.Action
	Email      string
	Recipient  *core.Recipient
	Events     []*core.DeliveryEvent // the found recipient's, oldest first
	Lookup     string                // why the lookup found nothing
}

func (d *Dashboard) campaignPage(w http.ResponseWriter, r *http.Request, s *session) (string, *page, error) {
	ctx := r.Context()
	id, err := pathID(r)
	if err != nil {
		return "", nil, err
	}
	c, err := d.eng.Campaign(ctx, id)
	if err != nil {
		return "", nil, err
	}
	data := campaignData{C: c, Actions: actionsFor(c.Status), Schedule: newScheduleView(c, d.auth.now())}
	if data.P, err = d.eng.Progress(ctx, id); err != nil {
		return "", nil, err
	}
	minutes, err := d.eng.Minutes(ctx, id, ChartMinutes)
	if err != nil {
		return "", nil, err
	}
	data.Chart = chartSVG(minutes)
	if c.Stats.Failed+c.Stats.Bounced > 0 {
		if data.Failures, err = d.eng.Failures(ctx, id); err != nil {
			return "", nil, err
		}
	}
	if data.Executions, err = d.eng.Executions(ctx, id); err != nil {
		return "", nil, err
	}
	if n := len(data.Executions); n > pageExecutions {
		data.Executions, data.MoreExec = data.Executions[:pageExecutions], n-pageExecutions
	}
	q, err := d.eng.Queue(ctx)
	if err != nil {
		return "", nil, err
	}
	for _, qs := range q {
		if qs.CampaignID == id {
			data.Queue = qs
		}
	}
	if data.Email = strings.TrimSpace(r.URL.Query().Get("email")); data.Email != "" {
		detail, err := d.eng.RecipientDetail(ctx, id, data.Email)
		if err != nil {
			if code := core.ErrorCode(err); code != core.ENOTFOUND && code != core.EINVALID {
				return "", nil, err
			}
			data.Lookup = core.ErrorMessage(err)
		} else {
			data.Recipient, data.Events = detail.Recipient, detail.Events
		}
	}
	return "campaign", &page{Title: c.Name, Nav: "campaigns", Data: data}, nil
}

// actionsFor is what the campaign page offers for a status; the engine
// decides in the end, with the CLI's refusals.
func actionsFor(st core.CampaignStatus) []core.Action {
	switch st {
	case core.CampaignDraft:
		return []core.Action{core.ActionActivate, core.ActionCancel}
	case core.CampaignActive:
		return []core.Action{core.ActionExecute, core.ActionPause, core.ActionCancel}
	case core.CampaignSending:
		return []core.Action{core.ActionPause, core.ActionCancel}
	case core.CampaignPaused:
		return []core.Action{core.ActionResume, core.ActionCancel}
	}
	return nil
}

// actionText is what each action does, for its button and confirmation.
var actionText = map[core.Action]struct{ Label, Explain string }{
	core.ActionActivate: {"Activate", "The campaign becomes ACTIVE: its recipients and templates are checked, and Send Now can queue them."},
	core.ActionExecute:  {"Send Now", "Every PENDING recipient is queued and the campaign starts SENDING on the next ticks."},
	core.ActionPause:    {"Pause", "No more messages are claimed for this campaign until it is resumed; sends in flight finish."},
	core.ActionResume:   {"Resume", "The campaign goes back to what it was doing before the pause."},
	core.ActionCancel:   {"Cancel", "The campaign stops for good: recipients not yet sent are never sent. This cannot be undone."},
	core.ActionRetry:    {"Retry", "The FAILED recipients of this class are queued again."},
}

// confirmData is the confirmation page's.
type confirmData struct {
	C       *core.Campaign
	Action  core.Action
	Label   string
	Explain string
	Class   string
}

func (d *Dashboard) confirmPage(w http.ResponseWriter, r *http.Request, s *session) (string, *page, error) {
	id, err := pathID(r)
	if err != nil {
		return "", nil, err
	}
	c, err := d.eng.Campaign(r.Context(), id)
	if err != nil {
		return "", nil, err
	}
	a := core.Action(r.URL.Query().Get("action"))
	t, ok := actionText[a]
	if !ok {
		return "", nil, core.Errorf(core.EINVALID, "no action %q: the dashboard does activate, execute, pause, resume, cancel and retry", a)
	}
	data := confirmData{C: c, Action: a, Label: t.Label, Explain: t.Explain, Class: r.URL.Query().Get("class")}
	return "confirm", &page{Title: t.Label + " " + c.Name, Nav: "campaigns", Data: data}, nil
}

// action does a confirmed action through the engine and shows its outcome
// (the engine's message, a refusal included) on the campaign's page.
func (d *Dashboard) action(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := pathID(r)
	if err != nil {
		d.renderError(w, s, err)
		return
	}
	ctx := core.WithActor(r.Context(), "dashboard ("+clientAddr(r)+")")
	var msg string
	switch a := core.Action(r.PostFormValue("action")); a {
	case core.ActionExecute:
		var res *core.ExecuteResult
		if res, err = d.eng.Execute(ctx, id); err == nil {
			msg = res.Message
		}
	case core.ActionRetry:
		var res *core.RetryResult
		if res, err = d.eng.Retry(ctx, id, r.PostFormValue("class"), 0); err == nil {
			msg = res.Message
		}
	case core.ActionActivate, core.ActionPause, core.ActionResume, core.ActionCancel:
		var c *core.Campaign
		if c, err = d.eng.ChangeCampaign(ctx, id, a); err == nil {
			msg = fmt.Sprintf("Campaign %d is %s.", c.ID, c.Status)
		}
	default:
		err = core.Errorf(core.EINVALID, "no action %q: the dashboard does activate, execute, pause, resume, cancel and retry", a)
	}
	if err != nil {
		if core.ErrorCode(err) == core.EINTERNAL {
			d.renderError(w, s, err)
			return
		}
		d.auth.setFlash(s, core.ErrorMessage(err), false)
	} else {
		d.auth.setFlash(s, msg, true)
	}
	http.Redirect(w, r, "/campaigns/"+strconv.FormatInt(id, 10), http.StatusSeeOther)
}

// scheduleView is a campaign page's schedule, as `campaign show` prints it:
// the window, not-before and expiry when set, and whether the campaign may
// send now or when it next may (State; "" once it is COMPLETED or
// CANCELLED, when that no longer matters, unless it expired).
type scheduleView struct {
	Window    string
	NotBefore *time.Time
	Expires   *time.Time
	State     string
	Closed    bool
}

// newScheduleView is c's schedule at now; nil when c has none.
func newScheduleView(c *core.Campaign, now time.Time) *scheduleView {
	if !c.Schedule.Set() {
		return nil
	}
	v := &scheduleView{NotBefore: c.NotBefore, Expires: c.Expires}
	if c.SendWindow != nil {
		v.Window = c.SendWindow.String()
	}
	why := c.ClosedBy(now)
	v.Closed = why != ""
	if finished := c.Status == core.CampaignCompleted || c.Status == core.CampaignCancelled; finished && why != "expired" {
		return v
	}
	if why == "" {
		v.State = "open now"
		return v
	}
	var opens *time.Time
	if t := c.NextSend(now); !t.IsZero() {
		opens = &t
	}
	v.State = closedText(why, opens)
	return v
}

// closedText says why a schedule is closed and when it opens, as the
// campaign page and the queue page say it: "closed by send window, opens
// 2026-12-07 08:00:00 UTC", or that it never will.
func closedText(why string, opensAt *time.Time) string {
	if why == "expired" {
		return "expired: its unsent recipients fail as expired"
	}
	return "closed by " + closedBy(why) + ", opens " + opensText(why, opensAt)
}

// closedBy is a QueueSummary.Closed for people: "send window", "not
// before", "expired".
func closedBy(why string) string { return strings.ReplaceAll(why, "_", " ") }

// opensText is when a closed schedule opens (in UTC, like every time on
// the dashboard), or why it never will.
func opensText(why string, opensAt *time.Time) string {
	switch {
	case opensAt != nil:
		return fmtTime(opensAt)
	case why == "expired":
		return "never (expired: its unsent recipients fail at the next tick)"
	}
	return "never before it expires (its unsent recipients then fail as expired)"
}

// queueData is the queue page's: Queue the campaigns a tick may send
// (paused ones too, their rows held), Closed those outside their schedule,
// apart as `campaignd queue` lists them: their queued rows are not due.
type queueData struct {
	Queue  []*core.QueueSummary
	Closed []*core.QueueSummary
	Quotas []*core.QuotaStatus
	Ticks  []*core.TickRecord
}

func (d *Dashboard) queuePage(w http.ResponseWriter, r *http.Request, s *session) (string, *page, error) {
	q, err := d.eng.Queue(r.Context())
	if err != nil {
		return "", nil, err
	}
	quotas, err := d.eng.Quotas(r.Context())
	if err != nil {
		return "", nil, err
	}
	t, err := d.eng.Ticks(r.Context(), recentTicks)
	if err != nil {
		return "", nil, err
	}
	data := queueData{Quotas: quotas, Ticks: t}
	for _, qs := range q {
		if qs.Closed != "" {
			data.Closed = append(data.Closed, qs)
		} else {
			data.Queue = append(data.Queue, qs)
		}
	}
	return "queue", &page{Title: "Queue", Nav: "queue", Data: data}, nil
}

func (d *Dashboard) notFound(w http.ResponseWriter, r *http.Request, s *session) (string, *page, error) {
	return "", nil, core.Errorf(core.ENOTFOUND, "no page %s", r.URL.Path)
}

// pathID is the {id} of the path; ENOTFOUND when it is not a number.
func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, core.Errorf(core.ENOTFOUND, "no campaign %q", r.PathValue("id"))
	}
	return id, nil
}

// errorData is the error page's.
type errorData struct{ Message string }

// renderError answers err as a page, with the status its code maps to.
func (d *Dashboard) renderError(w http.ResponseWriter, s *session, err error) {
	status := httpx.Status(core.ErrorCode(err))
	p := &page{Title: http.StatusText(status), Data: errorData{Message: core.ErrorMessage(err)}}
	if s != nil {
		p.CSRF = s.csrf
	}
	d.render(w, status, "error", p)
}

// render writes a page; a template failing midway is the client's loss
// (a broken page), logged by nothing since the templates are tested.
func (d *Dashboard) render(w http.ResponseWriter, status int, name string, p *page) {
	t := d.pages[name]
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", p); err != nil {
		httpx.WriteError(w, core.EINTERNAL, "render "+name+": "+err.Error())
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String())) // an error is the client gone
}

// staticHandler lets browsers keep the embedded files an hour.
func staticHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// parsePages parses each page with the layout. It panics on a broken
// template: they are embedded, so that is a build mistake the tests see.
func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"eta":      fmtETA,
		"when":     fmtTime,
		"dur":      func(d time.Duration) string { return d.Round(time.Millisecond).String() },
		"label":    func(a core.Action) string { return actionText[a].Label },
		"rate":     func(p *float64) string { return fmtRate(p) },
		"pct":      func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
		"number":   core.Thousands,
		"retried":  func(c core.ErrorClass) bool { return c != "" },
		"closedBy": closedBy,
		"closed":   func(q *core.QueueSummary) string { return closedText(q.Closed, q.OpensAt) },
		"opens":    func(q *core.QueueSummary) string { return opensText(q.Closed, q.OpensAt) },
		"queued":   func(q *core.QueueSummary) int64 { return q.DueNow + q.Waiting },
	}
	pages := map[string]*template.Template{}
	for _, name := range []string{"login", "campaigns", "campaign", "confirm", "queue", "error"} {
		t := template.Must(template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
		pages[name] = t
	}
	return pages
}

// fmtETA writes an ETA in seconds as "1h 02m", "3m 20s" or "—".
func fmtETA(s *int64) string {
	if s == nil {
		return "—"
	}
	d := time.Duration(*s) * time.Second
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd %02dh", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
}

// fmtTime writes a time in UTC to the second, or "—".
func fmtTime(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return "—"
		}
		return v.UTC().Format("2006-01-02 15:04:05 UTC")
	case *time.Time:
		if v == nil {
			return "—"
		}
		return fmtTime(*v)
	}
	return "—"
}

// fmtRate writes a success rate, or "—" before there is one.
func fmtRate(p *float64) string {
	if p == nil {
		return "—"
	}
	return strconv.FormatFloat(*p, 'f', 1, 64) + "%"
}
