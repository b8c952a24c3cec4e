package main_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/campaignd/campaignd/plugins/sendgrid/sgfake"
	"github.com/campaignd/campaignd/sdk"
	"github.com/campaignd/campaignd/sdk/plugin"
	"github.com/campaignd/campaignd/sdk/sdktest"
)

// pluginPath is the plugin binary, built once by TestMain (or prebuilt in
// $CAMPAIGND_BIN_DIR).
var pluginPath string

func TestMain(m *testing.M) {
	path, err := sdktest.BuildPlugin(".")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pluginPath = path
	code := m.Run()
	sdktest.RemoveBuilt()
	os.Exit(code)
}

func startFake(t *testing.T) *sgfake.Server {
	t.Helper()
	f := sgfake.New()
	t.Cleanup(f.Close)
	return f
}

// Recipients the fake answers specially in the conformance run.
const (
	rcptThrottle = "throttle@example.com"
	rcpt500      = "fail500@example.com"
	rcpt503      = "fail503@example.com"
	rcptStall    = "stall@example.com"
)

func to(addr string) func(*sdk.Message) { return func(m *sdk.Message) { m.To = addr } }

// TestConformance runs the sdk's conformance kit against the built plugin
// with the fake producing every outcome class.
func TestConformance(t *testing.T) {
	f := startFake(t)
	f.SetVerifiedSenders("example.com") // the kit sends from sender@example.com
	f.SetASMGroups(42)
	f.RespondTo(rcptThrottle, sgfake.RateLimited(3*time.Second))
	f.RespondTo(rcpt500, sgfake.Status(500))
	f.RespondTo(rcpt503, sgfake.Status(503))
	f.RespondTo(rcptStall, sgfake.Response{Hang: true})

	var verified sync.Map // message-id -> true
	sdktest.Run(t, sdktest.Config{
		PluginPath: pluginPath,
		Options:    map[string]string{"api_key": f.APIKey(), "api_url": f.URL(), "timeout": "20s"},
		Scenarios: []sdktest.Scenario{
			{Name: "sandbox is accepted", Options: map[string]string{"sandbox": "true"}},
			{Name: "categories and unsubscribe group", Options: map[string]string{"categories": "news,weekly", "asm_group_id": "42"}},
			{
				Name: "400 invalid request is permanent",
				Edit: func(m *sdk.Message) { m.Subject = "" },
				Want: &sdk.Error{Class: sdk.ClassPermanent, HTTPStatus: 400, Message: "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined. (field: subject)"},
			},
			{
				Name: "403 unverified sender is permanent",
				Edit: func(m *sdk.Message) { m.From = "Someone <someone@unverified.test>" },
				Want: &sdk.Error{Class: sdk.ClassPermanent, HTTPStatus: 403, Message: "does not match a verified Sender Identity"},
			},
			{
				Name: "413 message over 30 MB is permanent",
				Edit: func(m *sdk.Message) { m.HTML = strings.Repeat("0123456789abcdef", (31<<20)/16) },
				Want: &sdk.Error{Class: sdk.ClassPermanent, HTTPStatus: 413, Message: "content too large"},
			},
			{
				Name:    "401 wrong key is a configuration error",
				Options: map[string]string{"api_key": "SG.wrong-key"},
				Want:    &sdk.Error{Class: sdk.ClassConfig, HTTPStatus: 401, Message: "The provided authorization grant is invalid, expired, or revoked"},
			},
			{
				Name:    "404 wrong api_url is a configuration error",
				Options: map[string]string{"api_url": f.URL() + "/not-the-api"},
				Want:    &sdk.Error{Class: sdk.ClassConfig, HTTPStatus: 404, Message: "check api_url"},
			},
			{
				Name: "429 is throttled with the reset delay",
				Edit: to(rcptThrottle),
				Want: &sdk.Error{Class: sdk.ClassThrottled, HTTPStatus: 429, RetryAfter: 3 * time.Second, Message: "too many requests"},
			},
			{
				Name: "500 is transient",
				Edit: to(rcpt500),
				Want: &sdk.Error{Class: sdk.ClassTransient, HTTPStatus: 500, Message: "internal server error"},
			},
			{
				Name: "503 is transient",
				Edit: to(rcpt503),
				Want: &sdk.Error{Class: sdk.ClassTransient, HTTPStatus: 503, Message: "service unavailable"},
			},
		},
		Stall:        &sdktest.Scenario{Edit: to(rcptStall)},
		RequireCheck: true,
		BadCheckOptions: []map[string]string{
			{"api_key": "SG.wrong-key"},
			{"api_url": f.URL() + "/not-the-api"},
		},
		BadOptions: []map[string]string{
			{"api_key": ""},
			{"api_key": "${SENDGRID_API_KEY}"},
			{"api_url": "ftp://api.sendgrid.com"},
			{"api_url": "http://api.sendgrid.com"},
			{"timeout": "soon"},
			{"sandbox": "maybe"},
			{"categories": "a,b,c,d,e,f,g,h,i,j,k"},
			{"asm_group_id": "news"},
			{"apikey": "SG.typo"},
		},
		Verify: func(t *testing.T, msg *sdk.Message, r *sdk.Receipt) {
			verifyRecorded(t, f, msg, r)
			verified.Store(msg.MessageID, true)
		},
	})
	n := 0
	verified.Range(func(any, any) bool { n++; return true })
	if n < sdktest.ConcurrentSends {
		t.Errorf("Verify saw %d distinct messages, want at least %d", n, sdktest.ConcurrentSends)
	}
}

// verifyRecorded finds the request the fake accepted for r and checks it
// carries msg.
func verifyRecorded(t *testing.T, f *sgfake.Server, msg *sdk.Message, r *sdk.Receipt) {
	t.Helper()
	var rec *sgfake.Message
	msgs := f.Messages()
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if m.Mail.CustomArgs["message_id"] != msg.MessageID {
			continue
		}
		if (r.ProviderID != "" && m.ID == r.ProviderID) || (r.ProviderID == "" && m.Sandbox) {
			rec = &m
			break
		}
	}
	if rec == nil {
		t.Errorf("no accepted request for %s with X-Message-Id %q", msg.MessageID, r.ProviderID)
		return
	}
	got := rec.Mail
	p := got.Personalizations[0]
	if got.From.Email != "sender@example.com" || got.From.Name != "sdktest" || p.To[0].Email != msg.To ||
		got.Subject != msg.Subject || got.ReplyTo == nil || got.ReplyTo.Email != msg.ReplyTo {
		t.Errorf("%s: envelope from %+v to %+v subject %q reply_to %+v", msg.MessageID, got.From, p.To, got.Subject, got.ReplyTo)
	}
	if len(got.Content) != 2 || got.Content[0].Type != "text/plain" || got.Content[0].Value != msg.Text ||
		got.Content[1].Type != "text/html" || got.Content[1].Value != msg.HTML {
		t.Errorf("%s: content differs (%d blocks)", msg.MessageID, len(got.Content))
	}
	if v, _ := got.Header("Message-ID"); v != msg.MessageID {
		t.Errorf("%s: Message-ID header %q", msg.MessageID, v)
	}
	if v, _ := got.Header("List-Unsubscribe"); v != msg.Headers[0].Value {
		t.Errorf("%s: List-Unsubscribe %q", msg.MessageID, v)
	}
	if got.CustomArgs["campaign_id"] != fmt.Sprint(msg.CampaignID) || got.CustomArgs["recipient_id"] != fmt.Sprint(msg.RecipientID) {
		t.Errorf("%s: custom_args %v", msg.MessageID, got.CustomArgs)
	}
}

// lockedBuffer collects the host's log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func launch(t *testing.T, logs *lockedBuffer, opts map[string]string, env ...string) (*plugin.Plugin, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := plugin.Launch(ctx, plugin.PluginConfig{
		Name:    "sendgrid",
		Plugin:  pluginPath,
		Options: opts,
		Env:     env,
		Logger:  hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: logs}),
	})
	if err == nil {
		t.Cleanup(func() { _ = p.Close() })
	}
	return p, err
}

// TestAPIKeyFromEnvironment configures the key only through
// SENDGRID_API_KEY in the plugin's environment.
func TestAPIKeyFromEnvironment(t *testing.T) {
	f := startFake(t)
	logs := &lockedBuffer{}
	p, err := launch(t, logs, map[string]string{"api_url": f.URL()}, "SENDGRID_API_KEY="+f.APIKey())
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Send(context.Background(), sdktest.NewMessage(1))
	if err != nil || r.ProviderID == "" {
		t.Fatalf("send: %+v %v", r, err)
	}
	if !strings.Contains(logs.String(), "api_key_source=SENDGRID_API_KEY") {
		t.Errorf("the configure log line does not say where the key came from:\n%s", logs)
	}
}

// TestAPIKeyNotInPluginOutput drives the built plugin, logging at trace
// level, through success, every failure class and configuration errors,
// and checks that neither the right nor a wrong key appears in any error
// the host sees or any line the plugin (or go-plugin) logs.
func TestAPIKeyNotInPluginOutput(t *testing.T) {
	const key = "SG.plugin-secret.DO-NOT-LEAK-91c2"
	const wrong = "SG.wrong-secret.DO-NOT-LEAK-e07d"
	f := startFake(t)
	f.SetAPIKey(key)
	logs := &lockedBuffer{}
	var texts []string
	note := func(err error) {
		if err != nil {
			texts = append(texts, err.Error())
		}
	}

	p, err := launch(t, logs, map[string]string{"api_key": key, "api_url": f.URL(), "timeout": "300ms"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := p.Send(ctx, sdktest.NewMessage(1)); err != nil {
		t.Fatal(err)
	}
	f.FailNext(500, 1)
	f.RateLimit(1, time.Second)
	f.Enqueue(sgfake.Response{Status: 400, Body: `{"errors":[{"message":"echo ` + key + `"}]}`})
	f.Stall(1)
	for i := range 4 {
		_, err := p.Send(ctx, sdktest.NewMessage(2+i))
		if err == nil {
			t.Fatalf("scripted failure %d succeeded", i)
		}
		note(err)
	}

	q, err := launch(t, logs, map[string]string{"api_key": wrong, "api_url": f.URL()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = q.Send(ctx, sdktest.NewMessage(9))
	if e := sdk.AsError(err); e == nil || e.Class != sdk.ClassConfig || e.HTTPStatus != 401 {
		t.Fatalf("wrong key: %v", err)
	}
	note(err)

	for _, opts := range []map[string]string{
		{"api_key": key, "api_url": "http://api.sendgrid.com"},
		{"api_key": key + " x", "api_url": f.URL()},
		{"api_key": key, "unknown": "1"},
	} {
		_, err := launch(t, logs, opts)
		var e *sdk.Error
		if !errors.As(err, &e) || e.Class != sdk.ClassConfig {
			t.Fatalf("options %v: %v, want ClassConfig", opts, err)
		}
		note(err)
	}

	out := strings.Join(texts, "\n") + "\n" + logs.String()
	if !strings.Contains(logs.String(), "sendgrid send failed") {
		t.Errorf("the plugin's debug lines did not reach the host log:\n%s", logs)
	}
	for _, secret := range []string{key, wrong, "DO-NOT-LEAK"} {
		if strings.Contains(out, secret) {
			t.Fatalf("an API key appears in the host's errors or logs:\n%s", out)
		}
	}
}
