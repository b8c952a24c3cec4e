package web_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/web"
)

func bearer(s string) http.Header { return http.Header{"Authorization": {"Bearer " + s}} }

func TestCronTickNeedsTheBearer(t *testing.T) {
	e := newEnv(t, options{})
	id := e.campaign(7, true)
	before := e.snap(id)
	for name, h := range map[string]http.Header{
		"missing":      nil,
		"wrong":        bearer("cron-secret-0123456789abcdeX"),
		"prefix":       bearer(cronSecret[:10]),
		"longer":       bearer(cronSecret + "x"),
		"basic scheme": {"Authorization": {"Basic " + cronSecret}},
		"empty bearer": {"Authorization": {"Bearer "}},
	} {
		res := e.do("POST", "/api/cron/process-email-queue", h, nil)
		if res.status != http.StatusUnauthorized || res.errorCode(t) != "unauthorized" ||
			!strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("%s: %d %v %s", name, res.status, res.header, res.body)
		}
	}
	e.unchanged(id, before)

	res := e.do("POST", "/api/cron/process-email-queue", bearer(cronSecret), nil)
	var got web.CronTickResult
	res.json(t, &got)
	if res.status != http.StatusOK || got != (web.CronTickResult{Processed: 7, Sent: 7}) {
		t.Fatalf("tick: %d %s", res.status, res.body)
	}
	if st := e.stats(id); st.Sent != 7 || e.sender.count() != 7 {
		t.Fatalf("stats %+v", st)
	}
	ticks, err := e.eng.Ticks(ctx, 1)
	if err != nil || len(ticks) != 1 || ticks[0].Trigger != core.TriggerHTTP {
		t.Fatalf("tick records %+v %v", ticks, err)
	}
	// An idle tick, with a body some cron services send.
	res = e.do("POST", "/api/cron/process-email-queue", http.Header{"Authorization": {"bearer " + cronSecret}, "Content-Type": {"application/json"}}, []byte("{}"))
	if res.status != http.StatusOK || !strings.Contains(string(res.body), `"processed":0`) {
		t.Fatalf("idle tick: %d %s", res.status, res.body)
	}
}

func TestCronExecute(t *testing.T) {
	e := newEnv(t, options{})
	id := e.campaign(4, false)
	path := "/api/campaigns/" + itoa(id) + "/execute"
	before := e.snap(id)
	if res := e.do("POST", path, bearer("nope-nope-nope-nope"), nil); res.status != http.StatusUnauthorized {
		t.Fatalf("wrong bearer: %d %s", res.status, res.body)
	}
	e.unchanged(id, before)

	res := e.do("POST", path, bearer(cronSecret), nil)
	var got map[string]any
	res.json(t, &got)
	if res.status != http.StatusOK || got["queued"] != float64(4) || got["message"] == "" || len(got) != 2 {
		t.Fatalf("execute: %d %s", res.status, res.body)
	}
	if st := e.stats(id); st.Queued != 4 || e.sender.count() != 0 {
		t.Fatalf("stats %+v, %d sent", st, e.sender.count())
	}
	xs, _ := e.eng.Executions(ctx, id)
	if len(xs) != 1 || !strings.HasPrefix(xs[0].By, "http cron endpoint from 127.0.0.1") {
		t.Fatalf("executions %+v", xs)
	}
	// Executing again is a conflict; unknown campaigns and bad ids say so.
	for p, want := range map[string]int{
		path:                            http.StatusConflict,
		"/api/campaigns/424242/execute": http.StatusNotFound,
		"/api/campaigns/abc/execute":    http.StatusBadRequest,
		"/api/campaigns/-1/execute":     http.StatusBadRequest,
	} {
		if res := e.do("POST", p, bearer(cronSecret), nil); res.status != want {
			t.Fatalf("%s: %d %s", p, res.status, res.body)
		}
	}
}

func TestCronDisabledWithoutSecret(t *testing.T) {
	e := newEnv(t, options{noCron: true})
	id := e.campaign(2, true)
	before := e.snap(id)
	for _, p := range []string{"/api/cron/process-email-queue", "/api/campaigns/" + itoa(id) + "/execute"} {
		if res := e.do("POST", p, bearer(""), nil); res.status != http.StatusNotFound {
			t.Fatalf("%s: %d %s", p, res.status, res.body)
		}
	}
	e.unchanged(id, before)
	if _, err := web.New(e.eng, web.Config{Listen: "127.0.0.1:0", CronSecret: "short"}); core.ErrorCode(err) != core.EINVALID {
		t.Fatalf("short secret: %v", err)
	}
}

func TestOnlyPublicRoutesExist(t *testing.T) {
	e := newEnv(t, options{})
	id := e.campaign(2, true)
	before := e.snap(id)
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/status"}, {"POST", "/v1/tick"}, {"GET", "/v1/campaigns"},
		{"POST", "/v1/campaigns/1/execute"}, {"GET", "/"}, {"GET", "/api/cron/process-email-queue/x"},
	} {
		res := e.do(c.method, c.path, bearer(cronSecret), []byte("{}"))
		if res.status != http.StatusNotFound || res.errorCode(t) != core.ENOTFOUND {
			t.Fatalf("%s %s: %d %s", c.method, c.path, res.status, res.body)
		}
	}
	res := e.do("GET", "/webhooks/sendgrid", nil, nil)
	if res.status != http.StatusMethodNotAllowed || res.header.Get("Allow") != "POST" || res.errorCode(t) != "method_not_allowed" {
		t.Fatalf("GET webhook: %d %v %s", res.status, res.header, res.body)
	}
	if res := e.do("GET", "/api/cron/process-email-queue", bearer(cronSecret), nil); res.status != http.StatusMethodNotAllowed {
		t.Fatalf("GET cron: %d", res.status)
	}
	e.unchanged(id, before)
}

func TestServerLifecycle(t *testing.T) {
	e := newEnv(t, options{})
	if _, err := web.New(e.eng, web.Config{}); core.ErrorCode(err) != core.EINVALID {
		t.Fatalf("no listen address: %v", err)
	}
	s, err := web.New(e.eng, web.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr() != nil {
		t.Fatal("address before Listen")
	}
	if err := s.Serve(); err == nil {
		t.Fatal("Serve before Listen succeeded")
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err == nil {
		t.Fatal("second Listen succeeded")
	}
	// The port is taken while listening.
	if err := mustNew(t, e, s.Addr().String()).Listen(); err == nil {
		t.Fatal("listened twice on one port")
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	waitUp(t, "http://"+s.Addr().String())
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	// A server that listened but never served releases its port.
	s2 := mustNew(t, e, "127.0.0.1:0")
	if err := s2.Listen(); err != nil {
		t.Fatal(err)
	}
	addr := s2.Addr().String()
	if err := s2.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	s3 := mustNew(t, e, addr)
	if err := s3.Listen(); err != nil {
		t.Fatalf("port not released: %v", err)
	}
	_ = s3.Shutdown(sctx)
}

func mustNew(t *testing.T, e *env, addr string) *web.Server {
	t.Helper()
	s, err := web.New(e.eng, web.Config{Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func waitUp(t *testing.T, base string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		res, err := http.Post(base+"/webhooks/sendgrid", "application/json", strings.NewReader("[]"))
		if err == nil {
			res.Body.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("server never came up")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
