package main_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/admin"
	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
)

// BenchmarkDashboard10M serves the dashboard's pages and /metrics, in
// process, from a copy of the 10,000,000-recipient database (one SENDING
// campaign) after 1,000 of its recipients were claimed and recorded over
// ten minutes, 5% failed (so the campaign page draws bars and reads a
// failure breakdown). Each sub-benchmark is one page's server time, a
// logged-in session's request through the admin listener's handler:
// ms/op, against the design's 100 ms.
func BenchmarkDashboard10M(b *testing.B) {
	const n = 10_000_000
	ctx := context.Background()
	db, id := openCopy(b, bigDB(b, n, true))
	start := time.Now().Add(-10 * time.Minute)
	for i := range 20 {
		at := start.Add(time.Duration(i) * 30 * time.Second)
		// Claimed now (the rows are due since the build), recorded as if
		// over the last ten minutes.
		now := time.Now()
		rs, err := db.Claim(ctx, id, 50, fmt.Sprintf("dash%d", i), now.Add(time.Minute), now)
		if err != nil || len(rs) != 50 {
			b.Fatalf("claim: %v (%d)", err, len(rs))
		}
		for j, r := range rs {
			o := core.Outcome{RecipientID: r.ID, CampaignID: id, ClaimToken: r.ClaimToken, Status: core.RecipientSent, At: at}
			if j%20 == 0 {
				o.Status, o.ErrorClass, o.ErrorCode, o.EnhancedCode, o.Error = core.RecipientFailed, "permanent", 550, "5.1.1", "no such user "+r.Email
			}
			if err := db.RecordOutcome(ctx, o); err != nil {
				b.Fatal(err)
			}
		}
	}
	eng, err := core.NewEngine(db, nil, core.DefaultLimits(), nil)
	if err != nil {
		b.Fatal(err)
	}
	auth, err := admin.NewAuth(admin.AuthConfig{})
	if err != nil {
		b.Fatal(err)
	}
	h := admin.Handler(admin.Options{Metrics: admin.NewMetrics(eng.Queue, nil), Dashboard: admin.NewDashboard(eng, auth)})
	login := httptest.NewRecorder()
	h.ServeHTTP(login, httptest.NewRequest("GET", "/login?link="+auth.NewLoginLink().Token, nil))
	cookies := login.Result().Cookies()
	if login.Code != http.StatusSeeOther || len(cookies) != 1 {
		b.Fatalf("login: %d", login.Code)
	}
	ids := fmt.Sprint(id)
	for _, p := range []struct{ name, path string }{
		{"campaigns", "/"},
		{"campaign", "/campaigns/" + ids},
		{"lookup", "/campaigns/" + ids + "?email=user05000000%40example.net"},
		{"queue", "/queue"},
		{"confirm", "/campaigns/" + ids + "/confirm?action=pause"},
		{"metrics", "/metrics"},
	} {
		b.Run(p.name, func(b *testing.B) {
			var worst time.Duration
			for b.Loop() {
				req := httptest.NewRequest("GET", p.path, nil)
				req.AddCookie(cookies[0])
				w := httptest.NewRecorder()
				t0 := time.Now()
				h.ServeHTTP(w, req)
				worst = max(worst, time.Since(t0))
				if w.Code != http.StatusOK {
					b.Fatalf("GET %s: %d\n%s", p.path, w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
			b.ReportMetric(benchMS(worst), "max-ms")
		})
	}
}

// BenchmarkDaemonRSSAdmin10M is BenchmarkDaemonRSS10M with the admin
// listener on and in use: the daemon sends 1,000 emails (20 ticks of 50)
// from the 10,000,000-recipient campaign while a client logged in to the
// dashboard loads the campaign page and scrapes /metrics every 100 ms.
// Metrics: hwm-MB (the daemon's VmHWM at the end: its peak RSS over its
// life), pages (dashboard and metrics requests answered while sending),
// page-max-ms (the slowest of them, wall time from the client).
func BenchmarkDaemonRSSAdmin10M(b *testing.B) {
	const n, ticks, per = 10_000_000, 20, core.MaxBatchSize
	src := bigDB(b, n, true)
	sink := startSink(b, smtptest.Options{Lean: true})
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(b))
	e := NewEnv(b, "tick_interval = \"0s\"\n"+sinkTOML("sink", sink)+"\n[admin]\nlisten = \""+addr+"\"\nadmin_token = \""+dashToken+"\"\n")
	benchCopyFile(b, src, e.DB)
	d := e.StartDaemon()
	pid := d.Cmd.Process.Pid

	// A browser's session: the token login, then the cookie.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm("http://"+addr+"/login", map[string][]string{"token": {dashToken}})
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		b.Fatalf("login: %d", resp.StatusCode)
	}
	cookie := resp.Cookies()[0]
	var pages atomic.Int64
	var slowest atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			for _, p := range []string{"/campaigns/1", "/metrics"} {
				req, _ := http.NewRequest("GET", "http://"+addr+p, nil)
				req.AddCookie(cookie)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						pages.Add(1)
						if d := int64(time.Since(t0)); d > slowest.Load() {
							slowest.Store(d)
						}
					}
				}
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	for b.Loop() {
		for range ticks {
			tickSent(b, e, per)
		}
	}
	close(stop)
	wg.Wait()
	_, hwm := procMem(pid)
	if pages.Load() == 0 {
		b.Fatal("no dashboard page or scrape was answered")
	}
	b.ReportMetric(float64(hwm)/1e6, "hwm-MB")
	b.ReportMetric(float64(pages.Load()), "pages")
	b.ReportMetric(benchMS(time.Duration(slowest.Load())), "page-max-ms")
}
