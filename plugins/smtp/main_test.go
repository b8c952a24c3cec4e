package main_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
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

func startServer(t *testing.T, opts smtptest.Options) *smtptest.Server {
	t.Helper()
	srv, err := smtptest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func launch(t *testing.T, opts map[string]string, env ...string) (*plugin.Plugin, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := plugin.Launch(ctx, plugin.PluginConfig{
		Name:    "mail",
		Plugin:  pluginPath,
		Options: opts,
		Env:     env,
		Logger:  hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: os.Stderr}),
	})
	if err == nil {
		t.Cleanup(func() { _ = p.Close() })
	}
	return p, err
}

func message(n int) *sdk.Message {
	return &sdk.Message{
		CampaignID:  3,
		RecipientID: int64(n),
		MessageID:   fmt.Sprintf("<3.%d@campaignd.test>", n),
		From:        "News <news@example.com>",
		To:          fmt.Sprintf("rcpt%d@example.org", n),
		Subject:     "Hello",
		Text:        "hi",
		Date:        time.Now(),
	}
}

// TestPluginEndToEnd runs the built binary through plugin.Launch: delivery,
// connection reuse inside the plugin process, and classified failures
// arriving intact on the host side.
func TestPluginEndToEnd(t *testing.T) {
	srv := startServer(t, smtptest.Options{
		TLS:         "starttls",
		Users:       map[string]string{"u": "p"},
		RequireAuth: true,
		Faults: []smtptest.Fault{
			{Stage: smtptest.Rcpt, Rcpt: "rcpt2@example.org", Code: 550, Enhanced: "5.1.1", Text: "No such user"},
			{Stage: smtptest.Rcpt, Rcpt: "rcpt3@example.org", Code: 451, Enhanced: "4.7.1", Text: "Rate limit exceeded, retry in 20 seconds"},
			{Stage: smtptest.EndOfData, Rcpt: "rcpt4@example.org", Code: 554, Enhanced: "5.7.1", Text: "Spam"},
		},
	})
	p, err := launch(t, map[string]string{
		"host": srv.Host, "port": srv.Port, "tls": "starttls", "insecure_skip_verify": "true",
		"username": "u", "password": "p", "max_connections": "3", "helo": "client.test",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	info, err := p.Info(ctx)
	if err != nil || info.Name != "smtp" || info.MaxConcurrency != 3 {
		t.Errorf("Info = %+v, %v", info, err)
	}

	r, err := p.Send(ctx, message(1))
	if err != nil || r.ProviderID != "Q0001" || !strings.HasPrefix(r.Response, "250 ") {
		t.Fatalf("Send = %+v, %v", r, err)
	}
	for n, want := range map[int]sdk.Error{
		2: {Class: sdk.ClassBounced, SMTPCode: 550, EnhancedCode: "5.1.1"},
		3: {Class: sdk.ClassThrottled, SMTPCode: 451, EnhancedCode: "4.7.1", RetryAfter: 20 * time.Second},
		4: {Class: sdk.ClassPermanent, SMTPCode: 554, EnhancedCode: "5.7.1"},
	} {
		_, err := p.Send(ctx, message(n))
		var e *sdk.Error
		if !errors.As(err, &e) {
			t.Fatalf("rcpt%d: %T %v", n, err, err)
		}
		if e.Class != want.Class || e.SMTPCode != want.SMTPCode || e.EnhancedCode != want.EnhancedCode || e.RetryAfter != want.RetryAfter {
			t.Errorf("rcpt%d: got %+v, want %+v", n, e, want)
		}
	}

	var wg sync.WaitGroup
	for i := 10; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Send(ctx, message(i)); err != nil {
				t.Errorf("concurrent send %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if n := srv.Connections(); n > 3 {
		t.Errorf("%d connections with max_connections 3", n)
	}
	if n := len(srv.Messages()); n != 21 {
		t.Errorf("server got %d messages, want 21", n)
	}
}

func TestPluginConfigErrors(t *testing.T) {
	_, err := launch(t, map[string]string{"host": "127.0.0.1", "tls": "sometimes"})
	var e *sdk.Error
	if !errors.As(err, &e) || e.Class != sdk.ClassConfig || !strings.Contains(e.Message, `"tls"`) || !strings.Contains(e.Message, "sometimes") {
		t.Errorf("bad tls: %v", err)
	}
	_, err = launch(t, map[string]string{"host": "127.0.0.1", "colour": "blue"})
	if !errors.As(err, &e) || e.Class != sdk.ClassConfig || !strings.Contains(e.Message, `"colour"`) {
		t.Errorf("unknown option: %v", err)
	}
}

func TestPluginEnvFallback(t *testing.T) {
	srv := startServer(t, smtptest.Options{Users: map[string]string{"envuser": "envpass"}, RequireAuth: true})
	p, err := launch(t, map[string]string{"tls": "none"},
		"EMAIL_HOST="+srv.Addr, "EMAIL_USER=envuser", "EMAIL_PASS=envpass")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(context.Background(), message(1)); err != nil {
		t.Fatal(err)
	}
	if m := srv.Messages(); len(m) != 1 || m[0].User != "envuser" {
		t.Errorf("messages %+v", m)
	}
}

func TestPluginAuthFailureIsConfig(t *testing.T) {
	srv := startServer(t, smtptest.Options{Users: map[string]string{"u": "p"}, RequireAuth: true})
	p, err := launch(t, map[string]string{"host": srv.Host, "port": srv.Port, "tls": "none", "username": "u", "password": "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Send(context.Background(), message(1))
	var e *sdk.Error
	if !errors.As(err, &e) || e.Class != sdk.ClassConfig || e.SMTPCode != 535 {
		t.Errorf("wrong password: %v", err)
	}
}
