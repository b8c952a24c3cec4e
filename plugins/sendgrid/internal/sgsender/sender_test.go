package sgsender_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/campaignd/campaignd/plugins/sendgrid/internal/sgsender"
	"github.com/campaignd/campaignd/plugins/sendgrid/sgfake"
	"github.com/campaignd/campaignd/sdk"
)

// recLog records every log line with its arguments.
type recLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *recLog) rec(level, msg string, args []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf("%s %s %v", level, msg, args))
}
func (l *recLog) Debug(msg string, args ...any) { l.rec("DEBUG", msg, args) }
func (l *recLog) Warn(msg string, args ...any)  { l.rec("WARN", msg, args) }
func (l *recLog) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func startFake(t *testing.T) *sgfake.Server {
	t.Helper()
	f := sgfake.New()
	t.Cleanup(f.Close)
	return f
}

// newSender configures a Sender against f with extra options.
func newSender(t *testing.T, f *sgfake.Server, extra map[string]string) (*sgsender.Sender, *recLog) {
	t.Helper()
	log := &recLog{}
	s := sgsender.New(log)
	s.SetGetenv(env())
	opts := map[string]string{"api_key": f.APIKey(), "api_url": f.URL(), "timeout": "5s"}
	maps.Copy(opts, extra)
	if err := s.Configure(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, log
}

func message(i int) *sdk.Message {
	return &sdk.Message{
		CampaignID:  7,
		RecipientID: int64(i),
		MessageID:   fmt.Sprintf("<7.%d@example.com>", i),
		From:        "News Team <news@example.com>",
		To:          fmt.Sprintf("Reader %d <rcpt%d@example.org>", i, i),
		Subject:     "Hello",
		Text:        "Hello, reader.\n",
		HTML:        "<p>Hello, <b>reader</b> &amp; friends.</p>\n",
		Date:        time.Now(),
		Headers: []sdk.Header{
			{Name: "List-Unsubscribe", Value: "<https://example.com/u/1>"},
			{Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"},
		},
	}
}

// sendErr sends and requires an *sdk.Error.
func sendErr(t *testing.T, s *sgsender.Sender, ctx context.Context, m *sdk.Message) *sdk.Error {
	t.Helper()
	r, err := s.Send(ctx, m)
	if err == nil {
		t.Fatalf("send succeeded (%+v), want an error", r)
	}
	var e *sdk.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *sdk.Error", err)
	}
	return e
}

func TestSendAccepted(t *testing.T) {
	f := startFake(t)
	s, log := newSender(t, f, nil)
	r, err := s.Send(context.Background(), message(1))
	if err != nil {
		t.Fatal(err)
	}
	msgs := f.Messages()
	if len(msgs) != 1 || r.ProviderID == "" || r.ProviderID != msgs[0].ID || r.Response != "202 Accepted" {
		t.Fatalf("receipt %+v, fake recorded %d messages", r, len(msgs))
	}
	if !strings.Contains(log.text(), "sendgrid send accepted") {
		t.Errorf("log:\n%s", log.text())
	}
	info, err := s.Info(context.Background())
	if err != nil || info.Name != "sendgrid" || info.Version == "" || info.MaxConcurrency != 0 ||
		len(info.SecretOptions) != 1 || info.SecretOptions[0] != "api_key" || len(info.Options) != 6 {
		t.Errorf("Info %+v %v", info, err)
	}
}

// TestRequestShape checks every field of the request against the fake's
// decoded record.
func TestRequestShape(t *testing.T) {
	f := startFake(t)
	f.SetASMGroups(42)
	s, _ := newSender(t, f, map[string]string{"categories": "news, weekly", "asm_group_id": "42"})
	m := message(3)
	m.To = `"Doe, Jane; Dr." <jane@example.org>`
	m.ReplyTo = "Help Desk <help@example.com>"
	m.Subject = "Grüße"
	m.Headers = append(m.Headers,
		sdk.Header{Name: "X-Note", Value: "café"},
		sdk.Header{Name: "x-note", Value: "second, dropped"},
		sdk.Header{Name: "Reply-To", Value: "evil@example.net"},
		sdk.Header{Name: "Received", Value: "from nowhere"},
		sdk.Header{Name: "X-SG-ID", Value: "1"},
		sdk.Header{Name: "Date", Value: "Mon, 1 Jan 2024 00:00:00 +0000"},
		sdk.Header{Name: "Message-Id", Value: "<other@example.com>"},
		sdk.Header{Name: "MIME-Version", Value: "1.0"},
		sdk.Header{Name: "Content-Type", Value: "text/plain"},
	)
	if _, err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	rec := f.Messages()[0]
	got := rec.Mail
	if got.From != (sgfake.Address{Email: "news@example.com", Name: "News Team"}) {
		t.Errorf("from %+v", got.From)
	}
	if len(got.Personalizations) != 1 || len(got.Personalizations[0].To) != 1 ||
		got.Personalizations[0].To[0] != (sgfake.Address{Email: "jane@example.org", Name: "Doe Jane Dr."}) {
		t.Errorf("personalizations %+v", got.Personalizations)
	}
	if got.ReplyTo == nil || *got.ReplyTo != (sgfake.Address{Email: "help@example.com", Name: "Help Desk"}) || got.ReplyToList != nil {
		t.Errorf("reply_to %+v list %+v", got.ReplyTo, got.ReplyToList)
	}
	if got.Subject != "Grüße" {
		t.Errorf("subject %q", got.Subject)
	}
	if len(got.Content) != 2 || got.Content[0] != (sgfake.Content{Type: "text/plain", Value: m.Text}) ||
		got.Content[1] != (sgfake.Content{Type: "text/html", Value: m.HTML}) {
		t.Errorf("content %+v", got.Content)
	}
	if !strings.Contains(string(rec.Body), "<p>Hello, <b>reader</b> &amp; friends.</p>") {
		t.Errorf("HTML was escaped in the JSON: %s", rec.Body)
	}
	wantHeaders := map[string]string{
		"Message-ID":            "<7.3@example.com>",
		"List-Unsubscribe":      "<https://example.com/u/1>",
		"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		"X-Note":                "=?utf-8?q?caf=C3=A9?=",
	}
	if !maps.Equal(got.Headers, wantHeaders) {
		t.Errorf("headers %v\nwant %v", got.Headers, wantHeaders)
	}
	wantArgs := map[string]string{"campaign_id": "7", "recipient_id": "3", "message_id": "<7.3@example.com>"}
	if !maps.Equal(got.CustomArgs, wantArgs) {
		t.Errorf("custom_args %v", got.CustomArgs)
	}
	if strings.Join(got.Categories, ",") != "news,weekly" || got.ASM == nil || got.ASM.GroupID != 42 {
		t.Errorf("categories %v asm %+v", got.Categories, got.ASM)
	}
	if got.MailSettings != nil || rec.Sandbox {
		t.Errorf("mail_settings %+v without sandbox", got.MailSettings)
	}
	if ua := rec.Header.Get("User-Agent"); ua != "sendgrid/3.16.1;go" {
		t.Errorf("User-Agent %q", ua)
	}
	if rec.Header.Get("Accept") != "application/json" || rec.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request headers %v", rec.Header)
	}
}

func TestContentVariants(t *testing.T) {
	f := startFake(t)
	s, _ := newSender(t, f, nil)
	cases := []struct {
		name       string
		text, html string
		want       []string
	}{
		{"text only", "plain", "", []string{"text/plain"}},
		{"html only", "", "<i>x</i>", []string{"text/html"}},
	}
	for i, c := range cases {
		m := message(10 + i)
		m.Text, m.HTML = c.text, c.html
		if _, err := s.Send(context.Background(), m); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := f.Messages()[i].Mail.Content
		if len(got) != len(c.want) || got[0].Type != c.want[0] {
			t.Errorf("%s: content %+v", c.name, got)
		}
	}
	m := message(20)
	m.ReplyTo = "a@example.com, B <b@example.com>"
	if _, err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := f.Messages()[2].Mail
	if got.ReplyTo != nil || len(got.ReplyToList) != 2 || got.ReplyToList[1].Name != "B" {
		t.Errorf("reply_to %+v list %+v", got.ReplyTo, got.ReplyToList)
	}
}

func TestSandbox(t *testing.T) {
	f := startFake(t)
	s, _ := newSender(t, f, map[string]string{"sandbox": "true"})
	r, err := s.Send(context.Background(), message(1))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Response, "sandbox") || len(f.Messages()) != 1 || !f.Messages()[0].Sandbox {
		t.Errorf("receipt %+v", r)
	}
}

// TestClassificationAgainstFake drives every outcome class through the
// fake: real validation, real authentication, scripted provider states.
func TestClassificationAgainstFake(t *testing.T) {
	type want struct {
		class  sdk.Class
		status int
		msg    string
		retry  time.Duration
	}
	cases := []struct {
		name  string
		setup func(f *sgfake.Server) map[string]string // extra options
		edit  func(m *sdk.Message)
		want  want
	}{
		{"400 subject missing", nil, func(m *sdk.Message) { m.Subject = "" },
			want{sdk.ClassPermanent, 400, "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined. (field: subject)", 0}},
		{"400 several errors joined", nil, func(m *sdk.Message) { m.Subject, m.Text, m.HTML = "", "", "" },
			want{sdk.ClassPermanent, 400, "(field: subject); The content param is required", 0}},
		{"403 unverified sender", func(f *sgfake.Server) map[string]string { f.SetVerifiedSenders("example.net"); return nil }, nil,
			want{sdk.ClassPermanent, 403, "does not match a verified Sender Identity", 0}},
		{"413 too large", func(f *sgfake.Server) map[string]string { f.SetMaxBodyBytes(2000); return nil },
			func(m *sdk.Message) { m.HTML = strings.Repeat("x", 4000) },
			want{sdk.ClassPermanent, 413, "content too large", 0}},
		{"401 wrong key", func(f *sgfake.Server) map[string]string { return map[string]string{"api_key": "SG.wrong"} }, nil,
			want{sdk.ClassConfig, 401, "The provided authorization grant is invalid, expired, or revoked", 0}},
		{"429 with reset", func(f *sgfake.Server) map[string]string { f.RateLimit(1, 3*time.Second); return nil }, nil,
			want{sdk.ClassThrottled, 429, "too many requests", 3 * time.Second}},
		{"429 with Retry-After only", func(f *sgfake.Server) map[string]string {
			f.Enqueue(sgfake.Response{Status: 429, NoRateLimitHeaders: true, Header: http.Header{"Retry-After": {"7"}}})
			return nil
		}, nil, want{sdk.ClassThrottled, 429, "too many requests", 7 * time.Second}},
		{"429 without hints", func(f *sgfake.Server) map[string]string {
			f.Enqueue(sgfake.Response{Status: 429, NoRateLimitHeaders: true})
			return nil
		}, nil, want{sdk.ClassThrottled, 429, "too many requests", 0}},
		{"500", func(f *sgfake.Server) map[string]string { f.FailNext(500, 1); return nil }, nil,
			want{sdk.ClassTransient, 500, "internal server error", 0}},
		{"502 from a proxy", func(f *sgfake.Server) map[string]string {
			f.Enqueue(sgfake.Response{Status: 502, Body: "<html><h1>502 Bad Gateway</h1></html>", Header: http.Header{"Content-Type": {"text/html"}}})
			return nil
		}, nil, want{sdk.ClassTransient, 502, "502 Bad Gateway", 0}},
		{"503", func(f *sgfake.Server) map[string]string { f.FailNext(503, 1); return nil }, nil,
			want{sdk.ClassTransient, 503, "service unavailable", 0}},
		{"200 without sandbox", func(f *sgfake.Server) map[string]string { f.Enqueue(sgfake.Status(200)); return nil }, nil,
			want{sdk.ClassTransient, 200, "not queued", 0}},
		{"404 wrong api_url", func(f *sgfake.Server) map[string]string { return map[string]string{"api_url": f.URL() + "/api"} }, nil,
			want{sdk.ClassConfig, 404, "check api_url", 0}},
		{"302 redirect", func(f *sgfake.Server) map[string]string {
			f.Enqueue(sgfake.Response{Status: 302, Header: http.Header{"Location": {"https://elsewhere.example/v3/mail/send"}}})
			return nil
		}, nil, want{sdk.ClassConfig, 302, "redirect", 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := startFake(t)
			var extra map[string]string
			if c.setup != nil {
				extra = c.setup(f)
			}
			s, _ := newSender(t, f, extra)
			m := message(1)
			if c.edit != nil {
				c.edit(m)
			}
			e := sendErr(t, s, context.Background(), m)
			if e.Class != c.want.class || e.HTTPStatus != c.want.status || e.RetryAfter != c.want.retry ||
				!strings.Contains(e.Message, c.want.msg) {
				t.Errorf("got %#v\nwant %+v", *e, c.want)
			}
			if n := len(f.Messages()); n != 0 {
				t.Errorf("fake accepted %d messages", n)
			}
		})
	}
}

func TestLocalFailures(t *testing.T) {
	f := startFake(t)
	s, _ := newSender(t, f, nil)
	cases := []struct {
		name  string
		edit  func(m *sdk.Message)
		class sdk.Class
		msg   string
	}{
		{"bad From", func(m *sdk.Message) { m.From = "not an address" }, sdk.ClassConfig, "invalid From address"},
		{"empty From", func(m *sdk.Message) { m.From = "" }, sdk.ClassConfig, "invalid From address"},
		{"bad Reply-To", func(m *sdk.Message) { m.ReplyTo = "@@" }, sdk.ClassConfig, "invalid Reply-To"},
		{"bad To", func(m *sdk.Message) { m.To = "nobody" }, sdk.ClassPermanent, "invalid To address"},
		{"To too long", func(m *sdk.Message) { m.To = strings.Repeat("a", 65) + "@example.org" }, sdk.ClassPermanent, "invalid To address"},
		{"bad Message-ID", func(m *sdk.Message) { m.MessageID = "<no-at-sign>" }, sdk.ClassPermanent, "invalid Message-ID"},
		{"header injection", func(m *sdk.Message) { m.Headers = []sdk.Header{{Name: "X-A", Value: "a\r\nBcc: x@example.net"}} }, sdk.ClassPermanent, "CR, LF and NUL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := message(1)
			c.edit(m)
			e := sendErr(t, s, context.Background(), m)
			if e.Class != c.class || e.HTTPStatus != 0 || !strings.Contains(e.Message, c.msg) {
				t.Errorf("got %#v, want %s containing %q", *e, c.class, c.msg)
			}
		})
	}
	if st := f.Stats(); st.Requests != 0 {
		t.Errorf("%d requests reached the API", st.Requests)
	}
	if e := sendErr(t, s, context.Background(), nil); e.Class != sdk.ClassPermanent {
		t.Errorf("nil message: %v", e)
	}
	unconfigured := sgsender.New(nil)
	if e := sendErr(t, unconfigured, context.Background(), message(1)); e.Class != sdk.ClassConfig {
		t.Errorf("unconfigured: %v", e)
	}
}

func TestNetworkFailureIsTransient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	s := sgsender.New(nil)
	if err := s.Configure(context.Background(), map[string]string{"api_key": optKey, "api_url": "http://" + addr}); err != nil {
		t.Fatal(err)
	}
	e := sendErr(t, s, context.Background(), message(1))
	if e.Class != sdk.ClassTransient || e.HTTPStatus != 0 || !strings.Contains(e.Message, "connection refused") {
		t.Errorf("got %#v", *e)
	}
}

func TestTimeoutIsTransient(t *testing.T) {
	f := startFake(t)
	f.SetDelay(10 * time.Second)
	s, _ := newSender(t, f, map[string]string{"timeout": "200ms"})
	start := time.Now()
	e := sendErr(t, s, context.Background(), message(1))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s with a 200ms timeout", d)
	}
	if e.Class != sdk.ClassTransient || !strings.Contains(e.Message, "200ms timeout") {
		t.Errorf("got %#v", *e)
	}
}

func TestContextCancellation(t *testing.T) {
	f := startFake(t)
	s, _ := newSender(t, f, nil)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if e := sendErr(t, s, ctx, message(1)); e.Class != sdk.ClassTransient || !strings.Contains(e.Message, "context canceled") {
		t.Errorf("cancelled before: %#v", *e)
	}
	if st := f.Stats(); st.Requests != 0 {
		t.Errorf("a cancelled send reached the API")
	}

	for _, name := range []string{"delay", "stall"} {
		t.Run(name, func(t *testing.T) {
			if name == "delay" {
				f.SetDelay(time.Minute)
				defer f.SetDelay(0)
			} else {
				f.Stall(1)
			}
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(150*time.Millisecond, cancel)
			start := time.Now()
			e := sendErr(t, s, ctx, message(2))
			if d := time.Since(start); d > time.Second {
				t.Errorf("cancelled send returned after %s", d)
			}
			if e.Class != sdk.ClassTransient || !strings.Contains(e.Message, "context canceled") {
				t.Errorf("got %#v", *e)
			}
		})
	}

	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	f.Stall(1)
	if e := sendErr(t, s, ctx, message(3)); e.Class != sdk.ClassTransient || !strings.Contains(e.Message, "deadline exceeded") {
		t.Errorf("deadline: %#v", *e)
	}
	// The sender still works.
	if _, err := s.Send(context.Background(), message(4)); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentSends(t *testing.T) {
	f := startFake(t)
	s, _ := newSender(t, f, nil)
	const n = 20
	var wg sync.WaitGroup
	ids := make([]string, n)
	for i := range n {
		wg.Go(func() {
			m := message(100 + i)
			m.HTML = strings.Repeat(fmt.Sprintf("<p>%d</p>", i), 1000) // distinct bodies
			r, err := s.Send(context.Background(), m)
			if err != nil {
				t.Errorf("send %d: %v", i, err)
				return
			}
			ids[i] = r.ProviderID
		})
	}
	wg.Wait()
	msgs := f.Messages()
	if len(msgs) != n {
		t.Fatalf("fake accepted %d messages, want %d", len(msgs), n)
	}
	byID := map[string]sgfake.Message{}
	for _, m := range msgs {
		byID[m.ID] = m
	}
	// Each receipt names the request that carried its own message: no send
	// saw another's body (the trap of sharing a sendgrid.Client).
	for i, id := range ids {
		m, ok := byID[id]
		if !ok {
			t.Errorf("send %d: receipt %q matches no accepted request", i, id)
			continue
		}
		rid := strconv.Itoa(100 + i)
		if m.Mail.CustomArgs["recipient_id"] != rid || m.Recipients()[0] != "rcpt"+rid+"@example.org" ||
			!strings.HasPrefix(m.Mail.Body("text/html"), fmt.Sprintf("<p>%d</p>", i)) {
			t.Errorf("send %d got request for %v / %s", i, m.Recipients(), m.Mail.CustomArgs)
		}
	}
}

// TestAPIKeyNeverLeaks runs every path that produces an error or a log
// line and looks for the key in all of them, including an API answer that
// echoes the key back.
func TestAPIKeyNeverLeaks(t *testing.T) {
	const key = "SG.very-secret-key.DO-NOT-LEAK-7f3a9c"
	const otherKey = "SG.another-secret.DO-NOT-LEAK-b81e"
	f := startFake(t)
	f.SetAPIKey(key)
	var texts []string
	check := func(err error) {
		if err != nil {
			texts = append(texts, err.Error(), fmt.Sprintf("%#v", err))
		}
	}

	s, log := newSender(t, f, map[string]string{"api_key": key})
	_, err := s.Send(context.Background(), message(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, setup := range []func(){
		func() { f.FailNext(500, 1) },
		func() { f.RateLimit(1, time.Second) },
		func() {
			f.Enqueue(sgfake.Response{Status: 400, Body: `{"errors":[{"message":"bad key ` + key + `","field":"` + key + `"}]}`})
		},
		func() { f.Enqueue(sgfake.Response{Status: 503, Body: "upstream said: Bearer " + key}) },
		func() {
			f.Enqueue(sgfake.Response{Status: 302, Header: http.Header{"Location": {"https://x.example/?k=" + key}}})
		},
	} {
		setup()
		_, err := s.Send(context.Background(), message(2))
		if err == nil {
			t.Fatal("scripted failure succeeded")
		}
		check(err)
	}
	m := message(3)
	m.Subject = ""
	_, err = s.Send(context.Background(), m)
	check(err)

	// Timeouts and a dead server.
	slow, slowLog := newSender(t, f, map[string]string{"api_key": key, "timeout": "100ms"})
	f.SetDelay(time.Second)
	_, err = slow.Send(context.Background(), message(4))
	check(err)
	f.SetDelay(0)

	// A wrong key: neither key may show.
	wrong, wrongLog := newSender(t, f, map[string]string{"api_key": otherKey})
	_, err = wrong.Send(context.Background(), message(5))
	check(err)

	// Configuration errors that involve the key.
	for _, opts := range []map[string]string{
		{"api_key": key, "api_url": "http://api.sendgrid.com"},
		{"api_key": key, "bogus": "1"},
		{"api_key": key + " trailing"},
		{"api_key": "${" + key + "}"},
	} {
		_, err := sgsender.ParseOptions(opts, env())
		if err == nil {
			t.Fatalf("options %v accepted", opts)
		}
		check(err)
	}

	f.Close()
	_, err = s.Send(context.Background(), message(6))
	check(err)

	all := strings.Join(texts, "\n") + "\n" + log.text() + "\n" + slowLog.text() + "\n" + wrongLog.text()
	for _, secret := range []string{key, otherKey, "DO-NOT-LEAK"} {
		if strings.Contains(all, secret) {
			t.Fatalf("the API key appears in errors or logs:\n%s", all)
		}
	}
	if !strings.Contains(all, "[redacted]") {
		t.Errorf("the echoed key was not redacted:\n%s", all)
	}
	if len(log.lines) < 5 {
		t.Errorf("expected log lines for each send, got:\n%s", log.text())
	}
}
