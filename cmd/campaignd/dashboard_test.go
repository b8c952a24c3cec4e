package main_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
	"github.com/chromedp/chromedp"
)

// dashToken is the admin_token of the dashboard tests.
const dashToken = "dashboard-test-token-0123456789"

// chromiumPath is Debian's chromium ($CHROMIUM overrides). Missing, the
// test fails saying what to install: it never skips.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if fi, err := os.Stat(p); err != nil || fi.IsDir() {
		t.Fatalf("the dashboard's browser test needs headless Chromium at %s: install the Debian package `chromium` (apt-get install -y chromium; `make chromium` does it as root) or set $CHROMIUM", p)
	}
	return p
}

// browser starts headless Chromium with the flags a closed network needs
// (no Google hosts: without them it hangs) and a fresh profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	profile, err := os.MkdirTemp("", "campaignd-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(profile),
		chromedp.WindowSize(1200, 1400),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelT()
		cancelB()
		cancelA()
		// Chromium's helper processes can still write into the profile
		// for a moment after the browser exits (t.TempDir's removal then
		// failed the test now and then): retry, and only log a leftover.
		var err error
		for range 50 {
			if err = os.RemoveAll(profile); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("chromium profile left behind: %v", err)
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// run runs browser actions, failing the test on error.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	if err := chromedp.Run(ctx, actions...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// waitText polls the text of sel (the page's script refreshes it) until
// ok holds, for up to timeout.
func waitText(t *testing.T, ctx context.Context, sel string, timeout time.Duration, ok func(string) bool) string {
	t.Helper()
	var s string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if err := chromedp.Run(ctx, chromedp.Text(sel, &s, chromedp.ByQuery)); err == nil && ok(s) {
			return s
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("browser: %s never became what was expected; last %q", sel, s)
	return ""
}

// screenshot saves the page as name under the test's artifact directory
// (go test -artifacts keeps it).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	run(t, ctx, "screenshot", chromedp.FullScreenshot(&png, 100))
	p := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// TestDashboardBrowser drives the dashboard in headless Chromium: a page
// asked for without a session goes to the login, the admin token logs in
// and returns there, Send Now (confirmed) starts the campaign and the page
// follows it, by its own script, to 100% while the daemon sends to
// mailpit; a second campaign through an SMTP server that rejects three
// addresses shows them in its failure breakdown; a third, outside its send
// window, is apart on the queue page with when it opens.
// `campaignd dashboard`'s one-time link logs in once.
func TestDashboardBrowser(t *testing.T) {
	ctx := browser(t)
	mp := StartMailpit(t)
	full := []string{"full1@example.net", "full2@example.net", "full3@example.net"}
	var faults []smtptest.Fault
	for _, a := range full {
		faults = append(faults, smtptest.Fault{Stage: smtptest.Rcpt, Rcpt: a, Code: 552, Enhanced: "5.2.2", Text: "mailbox " + a + " full"})
	}
	sink := NewSink(t, faults...)
	addr := freeAddr(t)
	e := NewEnv(t, "tick_interval = \"100ms\"\n"+mp.SenderTOML("mailpit")+sinkTOML("mail", sink)+
		"\n[admin]\nlisten = \""+addr+"\"\nadmin_token = \""+dashToken+"\"\n")
	d := e.StartDaemon()
	defer d.Stop()
	base := "http://" + addr

	const n = 60
	id := MustCreateCampaign(t, e, "--sender", "mailpit", "--name", "Spring newsletter")
	ids := strconv.FormatInt(id, 10)
	var imp core.ImportResult
	e.MustJSON(&imp, "recipients", "import", ids, WriteFile(t, e.Dir, "r.csv", progressCSV(n)))
	e.MustRun("campaign", "activate", ids)

	// Without a session: to the login page, which comes back here.
	var loc string
	run(t, ctx, "open campaign without session",
		chromedp.Navigate(base+"/campaigns/"+ids), chromedp.WaitVisible("#token", chromedp.ByID), chromedp.Location(&loc))
	if !strings.Contains(loc, "/login?next=%2Fcampaigns%2F"+ids) {
		t.Fatalf("not sent to the login page: %s", loc)
	}
	run(t, ctx, "log in",
		chromedp.SendKeys("#token", dashToken, chromedp.ByID), chromedp.Submit("#token", chromedp.ByID),
		chromedp.WaitVisible("#h-progress", chromedp.ByID), chromedp.Location(&loc))
	if !strings.HasSuffix(loc, "/campaigns/"+ids) {
		t.Fatalf("after login at %s", loc)
	}

	// Send Now, confirmed.
	run(t, ctx, "send now",
		chromedp.Click(`a[href="/campaigns/`+ids+`/confirm?action=execute"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#confirm", chromedp.ByID), chromedp.Click("#confirm", chromedp.ByID),
		chromedp.WaitVisible(".flash.ok", chromedp.ByQuery))
	// The page's script keeps it current: no reload from here.
	waitText(t, ctx, "#percent", 90*time.Second, func(s string) bool { return s == "100.0%" })
	waitText(t, ctx, "#status", 10*time.Second, func(s string) bool { return s == "COMPLETED" })
	if got := mp.WaitCount(n, 10*time.Second); got != n {
		t.Fatalf("mailpit got %d messages, want %d", got, n)
	}
	waitText(t, ctx, "#count-sent", 10*time.Second, func(s string) bool { return s == strconv.Itoa(n) })
	screenshot(t, ctx, "dashboard-sent.png")

	// A server that rejects some addresses: the breakdown groups them.
	id2 := startSendingCampaign(t, e, progressCSV(20, full...), "--sender", "mail", "--name", "Autumn offers")
	ids2 := strconv.FormatInt(id2, 10)
	run(t, ctx, "open second campaign", chromedp.Navigate(base+"/campaigns/"+ids2), chromedp.WaitVisible("#h-progress", chromedp.ByID))
	waitText(t, ctx, "#status", 60*time.Second, func(s string) bool { return s == "COMPLETED" })
	fails := waitText(t, ctx, "#failures", 10*time.Second, func(s string) bool { return strings.Contains(s, "552") })
	if !strings.Contains(fails, "5.2.2") || !strings.Contains(fails, "3") || !strings.Contains(fails, "Retry permanent") {
		t.Fatalf("failure breakdown: %q", fails)
	}
	screenshot(t, ctx, "dashboard.png")

	// A campaign whose send window opens in two hours: the queue page
	// lists it apart, not as due, with when it opens (in UTC, as every
	// dashboard time), and its page shows the schedule.
	opens := time.Now().UTC().Add(2 * time.Hour).Truncate(time.Minute)
	window := "daily " + opens.Format("15:04") + "-" + opens.Add(time.Hour).Format("15:04") + " UTC"
	id3 := startSendingCampaign(t, e, progressCSV(5), "--sender", "mailpit", "--name", "Office hours", "--send-window", window)
	opensText := opens.Format("2006-01-02 15:04:05 UTC")
	run(t, ctx, "queue page", chromedp.Navigate(base+"/queue"), chromedp.WaitVisible("#h-t", chromedp.ByID))
	closed := waitText(t, ctx, "#closed", 10*time.Second, func(s string) bool { return strings.Contains(s, "Office hours") })
	if !strings.Contains(closed, "send window") || !strings.Contains(closed, opensText) {
		t.Fatalf("queue page: the closed campaign does not say why and when it opens (%s): %q", opensText, closed)
	}
	var due string
	run(t, ctx, "queue page's due campaigns", chromedp.Text(`section[aria-labelledby="h-q"]`, &due, chromedp.ByQuery))
	if strings.Contains(due, "Office hours") {
		t.Fatalf("queue page lists the closed campaign among those a tick may send: %q", due)
	}
	screenshot(t, ctx, "dashboard-queue.png")
	run(t, ctx, "closed campaign's page", chromedp.Navigate(base+"/campaigns/"+strconv.FormatInt(id3, 10)),
		chromedp.WaitVisible("#h-schedule", chromedp.ByID))
	if state := waitText(t, ctx, "#schedule-state", 10*time.Second, func(s string) bool { return s != "" }); state != "closed by send window, opens "+opensText {
		t.Fatalf("campaign page's schedule: %q", state)
	}

	// The one-time link: once, then refused.
	var link struct{ URL string }
	e.MustJSON(&link, "dashboard")
	if !strings.HasPrefix(link.URL, base+"/login?link=") {
		t.Fatalf("link %q", link.URL)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i, want := range []int{http.StatusSeeOther, http.StatusUnauthorized} {
		resp, err := noFollow.Get(link.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("link use %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	// Without a session the API-less pages stay shut; /metrics is open
	// here (no metrics_token).
	resp, err := noFollow.Get(base + "/queue")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if u, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusSeeOther || u == nil || u.Path != "/login" {
		t.Fatalf("queue without session: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// A non-loopback admin listener without admin_token is refused before
// the daemon starts, naming the key; a short token too.
func TestDashboardConfigRefusals(t *testing.T) {
	e := NewEnv(t, "[admin]\nlisten = \"0.0.0.0:0\"\n")
	r := e.Run("status")
	if r.Code == 0 || !strings.Contains(r.Stderr, "admin.listen") || !strings.Contains(r.Stderr, "admin_token") {
		t.Fatalf("non-loopback without token: %d %s", r.Code, r.Stderr)
	}
	e = NewEnv(t, "[admin]\nlisten = \"127.0.0.1:0\"\nadmin_token = \"short\"\n")
	if r := e.Run("status"); r.Code == 0 || !strings.Contains(r.Stderr, "admin.admin_token") {
		t.Fatalf("short token: %d %s", r.Code, r.Stderr)
	}
	// Without a daemon, `campaignd dashboard` says where links come from.
	e = NewEnv(t, "")
	if r := e.Run("dashboard"); r.Code == 0 || !strings.Contains(r.Stderr, "campaignd serve") {
		t.Fatalf("dashboard without daemon: %d %s", r.Code, r.Stderr)
	}
}
