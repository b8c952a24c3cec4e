package web_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/web"
)

func bearer(s string) http.Header { return http.Header{"Authorization": {"Bearer " + s}} }

// cronActor is what the cron endpoints attribute their work to, for the
// execution records: the caller's address.
const cronActor = "http cron endpoint from 127.0.0.1"

// Challenges a refused cron request gets (RFC 6750).
const (
	challenge        = `Bearer realm="campaignd"`
	challengeInvalid = `Bearer realm="campaignd", error="invalid_token"`
)

// refusedBearers are Authorization headers the cron endpoints refuse,
// with the challenge each gets.
var refusedBearers = map[string]struct {
	h         http.Header
	challenge string
}{
	"missing":      {nil, challenge},
	"wrong":        {bearer("cron-secret-0123456789abcdeX"), challengeInvalid},
	"prefix":       {bearer(cronSecret[:10]), challengeInvalid},
	"longer":       {bearer(cronSecret + "x"), challengeInvalid},
	"basic scheme": {http.Header{"Authorization": {"Basic " + cronSecret}}, challenge},
	"empty bearer": {http.Header{"Authorization": {"Bearer "}}, challenge},
	"no scheme":    {http.Header{"Authorization": {cronSecret}}, challenge},
}

// expectRefused checks a 401 answer: JSON "unauthorized", the challenge,
// and no trace of the secret.
func expectRefused(t *testing.T, what string, res response, challenge string) {
	t.Helper()
	if res.status != http.StatusUnauthorized || res.errorCode(t) != "unauthorized" || res.header.Get("WWW-Authenticate") != challenge {
		t.Fatalf("%s: %d %v %s", what, res.status, res.header, res.body)
	}
	if strings.Contains(string(res.body), cronSecret[:10]) {
		t.Fatalf("%s: the answer shows the secret: %s", what, res.body)
	}
}

func TestCronTickNeedsTheBearer(t *testing.T) {
	e := newEnv(t, options{})
	const path = "/api/cron/process-email-queue"
	for name, c := range refusedBearers {
		expectRefused(t, name, e.do("POST", path, c.h, nil), c.challenge)
		e.fake.expectNoCalls(t)
	}

	// Only the fields of CronTickResult are answered; problems is [] when
	// there are none.
	e.fake.set(func(f *fakeBackend) {
		f.tick = core.TickResult{Processed: 7, Sent: 5, Failed: 2, Retried: 3, Throttled: 1, Recovered: 1, Completed: 1, Remaining: 40}
	})
	res := e.do("POST", path, bearer(cronSecret), nil)
	var got web.CronTickResult
	res.json(t, &got)
	if res.status != http.StatusOK || !reflect.DeepEqual(got, web.CronTickResult{Processed: 7, Sent: 5, Failed: 2, Retried: 3, Throttled: 1, Remaining: 40, Problems: []string{}}) ||
		res.keys(t) != "failed,problems,processed,remaining,retried,sent,skipped,throttled" || res.header.Get("Content-Type") != "application/json" {
		t.Fatalf("tick: %d %s", res.status, res.body)
	}
	// One tick, triggered by HTTP, attributed to the caller, and not
	// cancelled when the caller hangs up.
	call := e.fake.expectCall(t, "Tick", core.TriggerHTTP)
	if call.Actor != cronActor || !call.Detached {
		t.Fatalf("tick call %+v", call)
	}

	// A tick that found another running, asked with a lower-case scheme,
	// padding and a body some cron services send.
	e.fake.set(func(f *fakeBackend) { f.tick = core.TickResult{Skipped: true} })
	res = e.do("POST", path, http.Header{"Authorization": {"  bearer   " + cronSecret + " "}, "Content-Type": {"application/json"}}, []byte("{}"))
	if res.status != http.StatusOK || strings.TrimSpace(string(res.body)) != `{"processed":0,"sent":0,"failed":0,"retried":0,"throttled":0,"remaining":0,"problems":[],"skipped":true}` {
		t.Fatalf("skipped tick: %d %s", res.status, res.body)
	}
	e.fake.expectCall(t, "Tick", core.TriggerHTTP)

	// A tick that met problems is still a 200: the request worked, and
	// the problems say what did not.
	problems := []string{"campaign 3: sender smtp would not start: exec: no such file", "campaign 4: all 5 sends through sender relay failed transiently (they will be retried): connection refused"}
	e.fake.set(func(f *fakeBackend) {
		f.tick = core.TickResult{Processed: 5, Retried: 5, Remaining: 5, Problems: problems}
	})
	res = e.do("POST", path, bearer(cronSecret), nil)
	got = web.CronTickResult{}
	res.json(t, &got)
	if res.status != http.StatusOK || !reflect.DeepEqual(got, web.CronTickResult{Processed: 5, Retried: 5, Remaining: 5, Problems: problems}) {
		t.Fatalf("tick with problems: %d %s", res.status, res.body)
	}
	e.fake.expectCall(t, "Tick", core.TriggerHTTP)
}

func TestCronTickErrors(t *testing.T) {
	e := newEnv(t, options{maxBody: 64})
	const path = "/api/cron/process-email-queue"
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{core.Errorf(core.EUNAVAILABLE, "the engine is draining"), http.StatusServiceUnavailable, core.EUNAVAILABLE},
		{core.Errorf(core.ECONFLICT, "lock held elsewhere"), http.StatusConflict, core.ECONFLICT},
		{errors.New("disk I/O error in /var/lib/campaignd"), http.StatusInternalServerError, core.EINTERNAL},
	} {
		e.fake.set(func(f *fakeBackend) { f.err = c.err })
		res := e.do("POST", path, bearer(cronSecret), nil)
		if res.status != c.status || res.errorCode(t) != c.code {
			t.Fatalf("%v: %d %s", c.err, res.status, res.body)
		}
		// Internal detail stays in the log.
		if msg := res.errorMessage(t); c.code == core.EINTERNAL && strings.Contains(msg, "disk") {
			t.Fatalf("internal error shown to the caller: %s", msg)
		} else if c.code != core.EINTERNAL && !strings.Contains(msg, core.ErrorMessage(c.err)) {
			t.Fatalf("message %q does not say %q", msg, c.err)
		}
		e.fake.expectCall(t, "Tick", core.TriggerHTTP)
	}
	e.fake.set(func(f *fakeBackend) { f.err = nil })

	// A body over the limit is refused before anything runs, with or
	// without a Content-Length.
	big := []byte(`{"pad":"` + strings.Repeat("x", 100) + `"}`)
	e.both("POST", path, bearer(cronSecret), big, func(what string, res response) {
		if res.status != http.StatusRequestEntityTooLarge || res.errorCode(t) != core.ETOOLARGE {
			t.Fatalf("%s: %d %s", what, res.status, res.body)
		}
		e.fake.expectNoCalls(t)
	})
	// Authentication comes first: a wrong bearer with a big body is 401.
	expectRefused(t, "wrong bearer, big body", e.do("POST", path, bearer("nope-nope-nope-nope"), big), challengeInvalid)
	e.fake.expectNoCalls(t)
}

func TestCronExecute(t *testing.T) {
	e := newEnv(t, options{maxBody: 64})
	const path = "/api/campaigns/7/execute"
	for name, c := range refusedBearers {
		expectRefused(t, name, e.do("POST", path, c.h, nil), c.challenge)
		e.fake.expectNoCalls(t)
	}
	// Authentication comes before the id is looked at.
	expectRefused(t, "bad id", e.do("POST", "/api/campaigns/abc/execute", nil, nil), challenge)
	e.fake.expectNoCalls(t)

	// The answer is exactly {queued, message}.
	e.fake.set(func(f *fakeBackend) {
		f.execute = core.ExecuteResult{ExecutionID: 3, CampaignID: 7, Queued: 4, Message: "queued 4 recipients of campaign 7 (c)"}
	})
	res := e.do("POST", path, bearer(cronSecret), nil)
	var got web.CronExecuteResult
	res.json(t, &got)
	if res.status != http.StatusOK || res.keys(t) != "message,queued" ||
		got != (web.CronExecuteResult{Queued: 4, Message: "queued 4 recipients of campaign 7 (c)"}) {
		t.Fatalf("execute: %d %s", res.status, res.body)
	}
	// The execution record names the cron caller; a hang-up does not
	// cancel the execute.
	call := e.fake.expectCall(t, "Execute", int64(7))
	if call.Actor != cronActor || !call.Detached {
		t.Fatalf("execute call %+v", call)
	}
	// A body some cron services send is fine.
	if res := e.do("POST", path, bearer(cronSecret), []byte("{}")); res.status != http.StatusOK {
		t.Fatalf("execute with {}: %d %s", res.status, res.body)
	}
	e.fake.expectCall(t, "Execute", int64(7))

	// The engine's refusals keep their codes: executing again is a
	// conflict, an unknown campaign not found.
	for _, c := range []struct {
		err    error
		status int
	}{
		{core.Errorf(core.ECONFLICT, "campaign 7 is SENDING"), http.StatusConflict},
		{core.Errorf(core.ENOTFOUND, "campaign 424242 not found"), http.StatusNotFound},
		{errors.New("database is locked"), http.StatusInternalServerError},
	} {
		e.fake.set(func(f *fakeBackend) { f.err = c.err })
		res := e.do("POST", path, bearer(cronSecret), nil)
		if res.status != c.status || res.errorCode(t) != core.ErrorCode(c.err) {
			t.Fatalf("%v: %d %s", c.err, res.status, res.body)
		}
		if c.status != http.StatusInternalServerError && !strings.Contains(res.errorMessage(t), core.ErrorMessage(c.err)) {
			t.Fatalf("%v: message %s", c.err, res.body)
		}
		e.fake.expectCall(t, "Execute", int64(7))
	}
	e.fake.set(func(f *fakeBackend) { f.err = nil })

	// Ids that are not positive integers never reach the engine.
	for _, id := range []string{"abc", "-1", "0", "1.5", "7x", "%207", "9223372036854775808"} {
		res := e.do("POST", "/api/campaigns/"+id+"/execute", bearer(cronSecret), nil)
		if res.status != http.StatusBadRequest || res.errorCode(t) != core.EINVALID {
			t.Fatalf("%s: %d %s", id, res.status, res.body)
		}
		e.fake.expectNoCalls(t)
	}
	// Nor does a body over the limit.
	big := []byte(`{"pad":"` + strings.Repeat("x", 100) + `"}`)
	e.both("POST", path, bearer(cronSecret), big, func(what string, res response) {
		if res.status != http.StatusRequestEntityTooLarge || res.errorCode(t) != core.ETOOLARGE {
			t.Fatalf("%s: %d %s", what, res.status, res.body)
		}
		e.fake.expectNoCalls(t)
	})
}

func TestCronDisabledWithoutSecret(t *testing.T) {
	e := newEnv(t, options{noCron: true})
	for _, p := range []string{"/api/cron/process-email-queue", "/api/campaigns/7/execute"} {
		for _, h := range []http.Header{bearer(""), bearer(cronSecret)} {
			if res := e.do("POST", p, h, nil); res.status != http.StatusNotFound || res.errorCode(t) != core.ENOTFOUND {
				t.Fatalf("%s: %d %s", p, res.status, res.body)
			}
		}
	}
	e.fake.expectNoCalls(t)
	if _, err := web.New(e.fake, web.Config{Listen: "127.0.0.1:0", CronSecret: "short"}); core.ErrorCode(err) != core.EINVALID {
		t.Fatalf("short secret: %v", err)
	}
}

func TestOnlyPublicRoutesExist(t *testing.T) {
	e := newEnv(t, options{})
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/status"}, {"POST", "/v1/tick"}, {"GET", "/v1/campaigns"},
		{"POST", "/v1/campaigns/1/execute"}, {"GET", "/"}, {"GET", "/api/cron/process-email-queue/x"},
		{"POST", "/api/campaigns/7/execute/x"}, {"POST", "/webhooks/other"}, {"POST", "/unsubscribe/"},
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
	for _, p := range []string{"/api/cron/process-email-queue", "/api/campaigns/7/execute"} {
		if res := e.do("GET", p, bearer(cronSecret), nil); res.status != http.StatusMethodNotAllowed || res.errorCode(t) != "method_not_allowed" {
			t.Fatalf("GET %s: %d %s", p, res.status, res.body)
		}
	}
	if res := e.do("PUT", "/unsubscribe/x", nil, nil); res.status != http.StatusMethodNotAllowed {
		t.Fatalf("PUT unsubscribe: %d %s", res.status, res.body)
	}
	// Every answer carries the common headers.
	if res.header.Get("X-Content-Type-Options") != "nosniff" || res.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", res.header)
	}
	e.fake.expectNoCalls(t)
}

// TestBackendPanicIsInternalError checks that a panic under a handler
// is answered 500 in JSON, without its detail, and the server goes on.
func TestBackendPanicIsInternalError(t *testing.T) {
	e := newEnv(t, options{})
	e.fake.set(func(f *fakeBackend) { f.panics = "secret detail" })
	res := e.do("POST", "/api/cron/process-email-queue", bearer(cronSecret), nil)
	if res.status != http.StatusInternalServerError || res.errorCode(t) != core.EINTERNAL || strings.Contains(string(res.body), "secret detail") {
		t.Fatalf("panic: %d %s", res.status, res.body)
	}
	e.fake.expectCall(t, "Tick", core.TriggerHTTP)
	e.fake.set(func(f *fakeBackend) { f.panics = nil })
	if res := e.do("POST", "/api/cron/process-email-queue", bearer(cronSecret), nil); res.status != http.StatusOK {
		t.Fatalf("after the panic: %d %s", res.status, res.body)
	}
	e.fake.expectCall(t, "Tick", core.TriggerHTTP)
}

func TestServerLifecycle(t *testing.T) {
	e := newEnv(t, options{})
	if _, err := web.New(e.fake, web.Config{}); core.ErrorCode(err) != core.EINVALID {
		t.Fatalf("no listen address: %v", err)
	}
	if _, err := web.New(nil, web.Config{Listen: "127.0.0.1:0"}); core.ErrorCode(err) != core.EINVALID {
		t.Fatalf("no backend: %v", err)
	}
	s, err := web.New(e.fake, web.Config{Listen: "127.0.0.1:0"})
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
	// waitUp's empty batches reached no engine.
	e.fake.expectNoCalls(t)
}

func mustNew(t *testing.T, e *env, addr string) *web.Server {
	t.Helper()
	s, err := web.New(e.fake, web.Config{Listen: addr})
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
