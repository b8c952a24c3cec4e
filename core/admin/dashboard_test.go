package admin_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/admin"
)

const testToken = "0123456789abcdef-admin"

// fakeEngine answers the dashboard with one campaign and records the
// actions it is asked for.
type fakeEngine struct {
	mu      sync.Mutex
	c       core.Campaign
	queue   []*core.QueueSummary
	actions []string
}

func (f *fakeEngine) Campaigns(ctx context.Context) ([]*core.Campaign, error) {
	c := f.c
	return []*core.Campaign{&c}, nil
}
func (f *fakeEngine) Campaign(ctx context.Context, id int64) (*core.Campaign, error) {
	if id != f.c.ID {
		return nil, core.Errorf(core.ENOTFOUND, "campaign %d not found", id)
	}
	c := f.c
	return &c, nil
}
func (f *fakeEngine) Progress(ctx context.Context, id int64) (*core.Progress, error) {
	c, err := f.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	return core.ComputeProgress(c, nil, core.Cadence{}, time.Now()), nil
}
func (f *fakeEngine) Minutes(ctx context.Context, id int64, n int) ([]core.MinuteCount, error) {
	ms := make([]core.MinuteCount, n)
	for i := range ms {
		ms[i] = core.MinuteCount{Minute: time.Unix(int64(i)*60, 0), Sent: int64(i), Failed: 1}
	}
	return ms, nil
}
func (f *fakeEngine) Failures(ctx context.Context, id int64) (*core.FailureReport, error) {
	return &core.FailureReport{CampaignID: id, Failed: 2, Groups: []core.FailureGroup{
		{Status: core.RecipientFailed, Class: "permanent", Code: 550, EnhancedCode: "5.1.1", Text: "no such <user>", Count: 2, Example: "x@example.org"},
	}}, nil
}
func (f *fakeEngine) Executions(ctx context.Context, id int64) ([]*core.Execution, error) {
	return nil, nil
}
func (f *fakeEngine) RecipientDetail(ctx context.Context, id int64, email string) (*core.RecipientDetail, error) {
	switch email {
	case "ann@example.org":
		return &core.RecipientDetail{Recipient: &core.Recipient{Email: email, Status: core.RecipientSent}, Events: []*core.DeliveryEvent{
			{Provider: "mailbox", Type: core.EventDeferred, Reason: "5.7.1 <blocked> by policy", At: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
			{Provider: "sendgrid", Type: core.EventDelivered, Reason: "250 OK", At: time.Date(2026, 3, 1, 12, 5, 0, 0, time.UTC)},
		}}, nil
	case "cay@example.org":
		return &core.RecipientDetail{Recipient: &core.Recipient{Email: email, Status: core.RecipientQueued}, Events: []*core.DeliveryEvent{}}, nil
	}
	return nil, core.Errorf(core.ENOTFOUND, "no recipient %s in campaign %d", email, id)
}
func (f *fakeEngine) Queue(ctx context.Context) ([]*core.QueueSummary, error) { return f.queue, nil }
func (f *fakeEngine) Quotas(ctx context.Context) ([]*core.QuotaStatus, error) {
	refill, blocked := time.Date(2026, 3, 1, 12, 1, 0, 0, time.UTC), time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	return []*core.QuotaStatus{{Sender: "gmail", Windows: []core.QuotaWindowStatus{
		{Rate: "30/minute", Limit: 30, Used: 30, Remaining: 0, NextRefill: &refill},
		{Rate: "500/day", Limit: 500, Used: 120, Remaining: 380}},
		BlockedUntil: &blocked, BlockedReason: "550 5.4.5 Daily user sending <limit> exceeded"}}, nil
}
func (f *fakeEngine) Ticks(ctx context.Context, limit int) ([]*core.TickRecord, error) {
	return []*core.TickRecord{{ID: 1, Trigger: "scheduler", Started: time.Now(), Duration: 12 * time.Millisecond, Sent: 3}}, nil
}
func (f *fakeEngine) ChangeCampaign(ctx context.Context, id int64, a core.Action) (*core.Campaign, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actions = append(f.actions, string(a)+" by "+core.Actor(ctx))
	if a == core.ActionResume {
		return nil, core.Errorf(core.ECONFLICT, "campaign 1 is ACTIVE, not PAUSED: nothing to resume")
	}
	c := f.c
	c.Status = core.CampaignPaused
	return &c, nil
}
func (f *fakeEngine) Execute(ctx context.Context, id int64) (*core.ExecuteResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actions = append(f.actions, "execute")
	return &core.ExecuteResult{CampaignID: id, Queued: 3, Message: "queued 3 recipients"}, nil
}
func (f *fakeEngine) Retry(ctx context.Context, id int64, class string, code int) (*core.RetryResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actions = append(f.actions, "retry "+class)
	return &core.RetryResult{CampaignID: id, Requeued: 2, Message: "requeued 2"}, nil
}

func (f *fakeEngine) done() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.actions...)
}

// clock is a settable time for session and link expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// dash is a dashboard on a test server, with a browser that keeps its
// cookie by hand and does not follow redirects.
type dash struct {
	t      *testing.T
	srv    *httptest.Server
	auth   *admin.Auth
	eng    *fakeEngine
	clock  *clock
	cookie *http.Cookie
}

func newDash(t *testing.T, metricsToken string) *dash {
	t.Helper()
	clk := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	auth, err := admin.NewAuth(admin.AuthConfig{AdminToken: testToken, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	eng := &fakeEngine{c: core.Campaign{ID: 1, Name: "Spring <news>", Status: core.CampaignActive, Sender: "smtp",
		Stats: core.Stats{Total: 10, Sent: 5, Failed: 2, Pending: 3}}}
	h := admin.Handler(admin.Options{Metrics: admin.NewMetrics(nil, nil), MetricsToken: metricsToken,
		Dashboard: admin.NewDashboard(eng, auth)})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &dash{t: t, srv: srv, auth: auth, eng: eng, clock: clk}
}

// do sends a request with the session cookie, if any, and returns the
// response and its body.
func (d *dash) do(method, path string, form url.Values) (*http.Response, string) {
	d.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, d.srv.URL+path, body)
	if err != nil {
		d.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if d.cookie != nil {
		req.AddCookie(d.cookie)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		if c.Name == "campaignd_session" {
			d.cookie = c
			if c.MaxAge < 0 {
				d.cookie = nil
			}
		}
	}
	return resp, string(b)
}

func (d *dash) login() {
	d.t.Helper()
	resp, _ := d.do("POST", "/login", url.Values{"token": {testToken}, "next": {"/"}})
	if resp.StatusCode != http.StatusSeeOther || d.cookie == nil {
		d.t.Fatalf("login: %d, cookie %v", resp.StatusCode, d.cookie)
	}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the CSRF token from a page.
func (d *dash) csrf(path string) string {
	d.t.Helper()
	_, body := d.do("GET", path, nil)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		d.t.Fatalf("no csrf field on %s:\n%s", path, body)
	}
	return m[1]
}

func TestDashboardRedirectsToLoginWithoutSession(t *testing.T) {
	d := newDash(t, "")
	for path, want := range map[string]string{
		"/":                                  "/login",
		"/campaigns/1":                       "/login?next=%2Fcampaigns%2F1",
		"/queue":                             "/login?next=%2Fqueue",
		"/no/such/page":                      "/login?next=%2Fno%2Fsuch%2Fpage",
		"/campaigns/1/confirm?action=cancel": "/login?next=%2Fcampaigns%2F1%2Fconfirm%3Faction%3Dcancel",
	} {
		resp, _ := d.do("GET", path, nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("GET %s: %d to %q, want 303 to %q", path, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	resp, _ := d.do("POST", "/campaigns/1/action", url.Values{"action": {"cancel"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Errorf("POST without session: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := d.eng.done(); len(got) != 0 {
		t.Errorf("actions without a session: %v", got)
	}
	// Health stays open; the login page too.
	for _, p := range []string{"/healthz", "/login", "/static/style.css"} {
		if resp, _ := d.do("GET", p, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
		}
	}
}

func TestDashboardLogin(t *testing.T) {
	d := newDash(t, "")
	resp, body := d.do("POST", "/login", url.Values{"token": {"wrong-token-0123456789"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong token") || d.cookie != nil {
		t.Fatalf("wrong token: %d cookie %v\n%s", resp.StatusCode, d.cookie, body)
	}
	resp, _ = d.do("POST", "/login", url.Values{"token": {testToken}, "next": {"/campaigns/1"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/campaigns/1" {
		t.Fatalf("login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	c := d.cookie
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure {
		t.Fatalf("cookie: %+v", c)
	}
	resp, body = d.do("GET", "/campaigns/1", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Spring &lt;news&gt;") || !strings.Contains(body, "<svg") {
		t.Fatalf("campaign page: %d\n%s", resp.StatusCode, body)
	}
	if !strings.Contains(body, "no such &lt;user&gt;") || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("failures escaped, CSP set: %s\n%s", resp.Header, body)
	}
	for _, p := range []string{"/", "/queue", "/campaigns/1?email=ann%40example.org", "/campaigns/1?email=bob%40example.org"} {
		if resp, _ := d.do("GET", p, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
		}
	}
	// The lookup lists the found recipient's events, oldest first,
	// escaped; one without events says none were recorded.
	if _, body := d.do("GET", "/campaigns/1?email=ann%40example.org", nil); !strings.Contains(body,
		"<tr><td>2026-03-01 12:00:00 UTC</td><td>deferred</td><td>mailbox</td><td>5.7.1 &lt;blocked&gt; by policy</td></tr>\n"+
			"<tr><td>2026-03-01 12:05:00 UTC</td><td>delivered</td><td>sendgrid</td><td>250 OK</td></tr>") {
		t.Errorf("lookup lacks ann's events:\n%s", body)
	}
	if _, body := d.do("GET", "/campaigns/1?email=cay%40example.org", nil); !strings.Contains(body, "QUEUED") ||
		!strings.Contains(body, "None recorded") || strings.Contains(body, "<th scope=\"col\">Provider</th>") {
		t.Errorf("lookup of a recipient without events:\n%s", body)
	}
	if _, body := d.do("GET", "/campaigns/1?email=bob%40example.org", nil); strings.Contains(body, "Delivery events") ||
		!strings.Contains(body, "no recipient bob@example.org") {
		t.Errorf("lookup of an unknown address:\n%s", body)
	}
	// Unknown campaigns and other surfaces' routes (the control API's,
	// the public listener's) are not served here, even with a session.
	for _, p := range []string{"/campaigns/9", "/v1/campaigns", "/v1/status", "/unsubscribe", "/webhooks/sendgrid"} {
		if resp, _ := d.do("GET", p, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	if _, body := d.do("GET", "/queue", nil); !strings.Contains(body, "scheduler") || !strings.Contains(body, "12ms") {
		t.Errorf("queue page lacks its tick:\n%s", body)
	}
	// The sender quotas panel: each window's budget left and next refill,
	// and a quota reply's block (escaped).
	if _, body := d.do("GET", "/queue", nil); !strings.Contains(body, "Sender quotas") ||
		!strings.Contains(body, `<td>30/minute</td><td class="num">30</td><td class="num">0</td><td>2026-03-01 12:01:00 UTC</td>`) ||
		!strings.Contains(body, `<td class="num">380</td>`) ||
		!strings.Contains(body, "gmail: blocked until 2026-03-02 12:00:00 UTC by the provider's quota reply: 550 5.4.5 Daily user sending &lt;limit&gt; exceeded") {
		t.Errorf("queue page lacks the sender quotas:\n%s", body)
	}
	// No open redirect: next must be a path here.
	d.cookie = nil
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example"} {
		resp, _ := d.do("POST", "/login", url.Values{"token": {testToken}, "next": {next}})
		if loc := resp.Header.Get("Location"); loc != "/" {
			t.Errorf("next %q: redirected to %q", next, loc)
		}
	}
	// Logging out ends the session on the server, not only the cookie.
	old := *d.cookie
	csrf := d.csrf("/")
	if resp, _ := d.do("POST", "/logout", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	d.cookie = &old
	if resp, _ := d.do("GET", "/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("old cookie after logout: %d", resp.StatusCode)
	}
}

func TestDashboardCSRF(t *testing.T) {
	d := newDash(t, "")
	d.login()
	resp, body := d.do("POST", "/campaigns/1/action", url.Values{"action": {"pause"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRF") {
		t.Fatalf("no token: %d\n%s", resp.StatusCode, body)
	}
	resp, _ = d.do("POST", "/campaigns/1/action", url.Values{"action": {"pause"}, "csrf": {"forged"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged token: %d", resp.StatusCode)
	}
	// Another session's token is not this one's.
	other := newDash(t, "")
	other.login()
	otherTok := other.csrf("/")
	if resp, _ := d.do("POST", "/campaigns/1/action", url.Values{"action": {"pause"}, "csrf": {otherTok}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("other session's token: %d", resp.StatusCode)
	}
	if got := d.eng.done(); len(got) != 0 {
		t.Fatalf("refused posts acted: %v", got)
	}
	// The confirmation page carries the token; its form does the action.
	tok := d.csrf("/campaigns/1/confirm?action=execute")
	resp, _ = d.do("POST", "/campaigns/1/action", url.Values{"action": {"execute"}, "csrf": {tok}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/campaigns/1" {
		t.Fatalf("execute: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body := d.do("GET", "/campaigns/1", nil); !strings.Contains(body, "queued 3 recipients") {
		t.Fatalf("no outcome shown:\n%s", body)
	}
	// A refusal is the engine's message, shown as it is.
	d.do("POST", "/campaigns/1/action", url.Values{"action": {"resume"}, "csrf": {tok}})
	if _, body := d.do("GET", "/campaigns/1", nil); !strings.Contains(body, "nothing to resume") || !strings.Contains(body, "refused") {
		t.Fatalf("refusal not shown:\n%s", body)
	}
	d.do("POST", "/campaigns/1/action", url.Values{"action": {"retry"}, "class": {"permanent"}, "csrf": {tok}})
	got := d.eng.done()
	if len(got) != 3 || got[0] != "execute" || !strings.HasPrefix(got[1], "resume by dashboard (127.0.0.1)") || got[2] != "retry permanent" {
		t.Fatalf("actions: %q", got)
	}
}

func TestDashboardLoginRateLimit(t *testing.T) {
	d := newDash(t, "")
	for i := range 5 {
		if resp, _ := d.do("POST", "/login", url.Values{"token": {"not-the-token-at-all"}}); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d", i, resp.StatusCode)
		}
	}
	// Blocked: even the right token is not looked at.
	resp, body := d.do("POST", "/login", url.Values{"token": {testToken}})
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || d.cookie != nil {
		t.Fatalf("blocked: %d %q\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	d.clock.add(61 * time.Second)
	// A wrong token after the block doubles it.
	d.do("POST", "/login", url.Values{"token": {"not-the-token-at-all"}})
	d.clock.add(61 * time.Second)
	if resp, _ := d.do("POST", "/login", url.Values{"token": {testToken}}); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("backoff not doubled: %d", resp.StatusCode)
	}
	d.clock.add(60 * time.Second)
	d.login()
}

func TestDashboardSessionExpires(t *testing.T) {
	d := newDash(t, "")
	d.login()
	d.clock.add(admin.SessionTTL - time.Minute)
	if resp, _ := d.do("GET", "/", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("live session: %d", resp.StatusCode)
	}
	// Use extends it; idle past the TTL ends it.
	d.clock.add(admin.SessionTTL - time.Minute)
	if resp, _ := d.do("GET", "/", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("extended session: %d", resp.StatusCode)
	}
	d.clock.add(admin.SessionTTL + time.Second)
	if resp, _ := d.do("GET", "/queue", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("expired session: %d", resp.StatusCode)
	}
}

func TestDashboardLoginLinkOnce(t *testing.T) {
	d := newDash(t, "")
	link := d.auth.NewLoginLink()
	if !link.Expires.Equal(d.clock.now().Add(admin.DefaultLinkTTL)) {
		t.Fatalf("expires %v", link.Expires)
	}
	resp, _ := d.do("GET", "/login?link="+link.Token+"&next=%2Fqueue", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/queue" || d.cookie == nil {
		t.Fatalf("link: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	d.cookie = nil
	resp, body := d.do("GET", "/login?link="+link.Token, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "campaignd dashboard") || d.cookie != nil {
		t.Fatalf("link used twice: %d\n%s", resp.StatusCode, body)
	}
	late := d.auth.NewLoginLink()
	d.clock.add(admin.DefaultLinkTTL + time.Second)
	if resp, _ := d.do("GET", "/login?link="+late.Token, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("expired link: %d", resp.StatusCode)
	}
}

func TestAdminTokenTooShort(t *testing.T) {
	if _, err := admin.NewAuth(admin.AuthConfig{AdminToken: "short"}); core.ErrorCode(err) != core.EINVALID {
		t.Fatalf("short token: %v", err)
	}
}

func TestMetricsToken(t *testing.T) {
	d := newDash(t, "metrics-token-0123456789")
	if resp, _ := d.do("GET", "/metrics", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no bearer: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", d.srv.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer metrics-token-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bearer: %d", resp.StatusCode)
	}
	// The dashboard session is not a metrics credential, nor the reverse.
	d.login()
	if resp, _ := d.do("GET", "/metrics", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("session on /metrics: %d", resp.StatusCode)
	}
}

// The queue page lists campaigns outside their schedule apart from those a
// tick may send, as `campaignd queue` does: their queued recipients are
// not counted as due, and each says why and when it opens (in UTC, like
// every dashboard time), or that it never will.
func TestDashboardQueueClosedApart(t *testing.T) {
	d := newDash(t, "")
	opens := time.Date(2026, 1, 2, 8, 0, 0, 0, time.UTC)
	d.eng.queue = []*core.QueueSummary{
		{CampaignID: 1, CampaignName: "Open <one>", Status: core.CampaignSending, DueNow: 5, Sender: "smtp"},
		{CampaignID: 2, CampaignName: "Paused one", Status: core.CampaignPaused, Held: 4, Sender: "smtp"},
		{CampaignID: 3, CampaignName: "Office <hours>", Status: core.CampaignSending, DueNow: 7, Waiting: 2, InFlight: 1,
			Closed: "send_window", OpensAt: &opens, Sender: "smtp"},
		{CampaignID: 4, CampaignName: "Too late", Status: core.CampaignSending, DueNow: 3, Closed: "expired", Sender: "smtp"},
		{CampaignID: 5, CampaignName: "Never again", Status: core.CampaignSending, DueNow: 6, Closed: "send_window", Sender: "smtp"},
	}
	d.login()
	resp, body := d.do("GET", "/queue", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("queue page: %d\n%s", resp.StatusCode, body)
	}
	due, closed, ok := strings.Cut(body, `id="closed"`)
	if !ok {
		t.Fatalf("queue page has no section for campaigns outside their schedule:\n%s", body)
	}
	closed, _, _ = strings.Cut(closed, `id="h-quota"`)
	for _, want := range []string{"Open &lt;one&gt;", "Paused one"} {
		if !strings.Contains(due, want) || strings.Contains(closed, want) {
			t.Errorf("%s is not among the campaigns a tick may send:\n%s", want, body)
		}
	}
	for _, name := range []string{"Office &lt;hours&gt;", "Too late", "Never again"} {
		if strings.Contains(due, name) || !strings.Contains(closed, name) {
			t.Errorf("%s is not apart, outside its schedule:\n%s", name, body)
		}
	}
	for _, want := range []string{
		// Queued (due and waiting), in flight, why, when it opens.
		`<td class="num">9</td><td class="num">1</td><td>send window</td><td>2026-01-02 08:00:00 UTC</td>`,
		`<td>expired</td><td>never (expired: its unsent recipients fail at the next tick)</td>`,
		`<td>send window</td><td>never before it expires (its unsent recipients then fail as expired)</td>`,
		"A tick sends nothing for these until their schedule opens",
	} {
		if !strings.Contains(closed, want) {
			t.Errorf("closed section lacks %q:\n%s", want, closed)
		}
	}
	// Only campaigns outside their schedule: the per-campaign table says
	// nothing may be sent, not that nothing is queued.
	d.eng.queue = d.eng.queue[2:]
	if _, body := d.do("GET", "/queue", nil); !strings.Contains(body, "Nothing queued that a tick may send now.") || !strings.Contains(body, `id="closed"`) {
		t.Errorf("queue page with only closed campaigns:\n%s", body)
	}
	d.eng.queue = nil
	if _, body := d.do("GET", "/queue", nil); !strings.Contains(body, "<p>Nothing queued.</p>") || strings.Contains(body, `id="closed"`) {
		t.Errorf("empty queue page:\n%s", body)
	}
}

// A campaign's page shows its schedule as `campaign show` does: the window,
// not-before and expiry, and whether it may send now or when it opens; its
// queue marks the queued recipients as not due while the schedule is closed.
func TestDashboardCampaignSchedule(t *testing.T) {
	d := newDash(t, "")
	d.login()
	if _, body := d.do("GET", "/campaigns/1", nil); strings.Contains(body, "h-schedule") {
		t.Errorf("a campaign without a schedule shows one:\n%s", body)
	}

	// The dashboard's clock: Thursday 2026-01-01 12:00 UTC, 13:00 in Berlin.
	w, err := core.ParseSendWindow("Mon-Fri 09:00-11:00 Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	notBefore, expires := time.Date(2025, 12, 1, 8, 0, 0, 0, time.UTC), time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	opens := time.Date(2026, 1, 2, 8, 0, 0, 0, time.UTC) // Friday 09:00 in Berlin
	d.eng.c.Status = core.CampaignSending
	d.eng.c.Schedule = core.Schedule{SendWindow: w, NotBefore: &notBefore, Expires: &expires}
	d.eng.queue = []*core.QueueSummary{{CampaignID: 1, CampaignName: d.eng.c.Name, Status: core.CampaignSending,
		DueNow: 3, Closed: "send_window", OpensAt: &opens, Sender: "smtp"}}
	_, body := d.do("GET", "/campaigns/1", nil)
	for _, want := range []string{
		"<dt>Send window</dt><dd>Mon-Fri 09:00-11:00 Europe/Berlin</dd>",
		"<dt>Not before</dt><dd>2025-12-01 08:00:00 UTC</dd>",
		"<dt>Expires</dt><dd>2026-02-01 00:00:00 UTC</dd>",
		`<dd id="schedule-state" class="closed">closed by send window, opens 2026-01-02 08:00:00 UTC</dd>`,
		"Schedule closed by send window, opens 2026-01-02 08:00:00 UTC: a tick sends nothing until then.",
		"<dt>Queued, not due</dt><dd>3</dd>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("campaign page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<dt>Due now</dt>") {
		t.Errorf("campaign page counts a closed campaign's queue as due now:\n%s", body)
	}

	// Inside the window: open, and its queue due.
	d.clock.add(20 * time.Hour) // Friday 09:00 in Berlin
	d.login()                   // the session idled out
	d.eng.queue[0].Closed, d.eng.queue[0].OpensAt = "", nil
	_, body = d.do("GET", "/campaigns/1", nil)
	if !strings.Contains(body, `<dd id="schedule-state">open now</dd>`) || !strings.Contains(body, "<dt>Due now</dt><dd>3</dd>") {
		t.Errorf("campaign page inside its window:\n%s", body)
	}

	// Past its expiry, even once COMPLETED, the page says it expired.
	d.clock.add(31 * 24 * time.Hour)
	d.login()
	d.eng.c.Status, d.eng.queue = core.CampaignCompleted, nil
	_, body = d.do("GET", "/campaigns/1", nil)
	if !strings.Contains(body, `<dd id="schedule-state" class="closed">expired: its unsent recipients fail as expired</dd>`) {
		t.Errorf("campaign page past its expiry:\n%s", body)
	}
}

// The next attempt is "now" while recipients are due (their oldest
// next_attempt_at is past), a time only when every one waits for a retry.
func TestDashboardNextAttempt(t *testing.T) {
	d := newDash(t, "")
	d.login()
	past, future := time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 12, 30, 0, 0, time.UTC)
	d.eng.queue = []*core.QueueSummary{{CampaignID: 1, CampaignName: d.eng.c.Name, Status: core.CampaignSending,
		DueNow: 3, Waiting: 1, NextAttempt: &past, Sender: "smtp"}}
	for _, page := range []string{"/queue", "/campaigns/1"} {
		if _, body := d.do("GET", page, nil); strings.Contains(body, "2025-12-31 23:00:00") || !strings.Contains(body, "now") {
			t.Errorf("%s: due recipients shown with a past next attempt:\n%s", page, body)
		}
	}
	d.eng.queue[0].DueNow, d.eng.queue[0].NextAttempt = 0, &future
	if _, body := d.do("GET", "/campaigns/1", nil); !strings.Contains(body, `<p class="meta" id="next-attempt">Next attempt 2026-01-01 12:30:00 UTC</p>`) {
		t.Errorf("campaign page of a queue waiting for a retry:\n%s", body)
	}
	if _, body := d.do("GET", "/queue", nil); !strings.Contains(body, "<td>2026-01-01 12:30:00 UTC</td>") {
		t.Errorf("queue page of a queue waiting for a retry:\n%s", body)
	}
}
