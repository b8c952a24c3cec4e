package smtpsender_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/plugins/smtp/internal/smtpsender"
	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
	"github.com/campaignd/campaignd/sdk"
)

func startServer(t *testing.T, opts smtptest.Options) *smtptest.Server {
	t.Helper()
	srv, err := smtptest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// options returns the options to reach srv; extra entries override them
// and an empty value deletes the key.
func options(srv *smtptest.Server, tlsMode string, extra map[string]string) map[string]string {
	o := map[string]string{
		"host":    srv.Host,
		"port":    srv.Port,
		"tls":     tlsMode,
		"helo":    "client.test",
		"timeout": "3s",
	}
	if tlsMode != smtpsender.TLSNone {
		o["insecure_skip_verify"] = "true"
	}
	for k, v := range extra {
		if v == "" {
			delete(o, k)
		} else {
			o[k] = v
		}
	}
	return o
}

func noEnv(string) string { return "" }

func configure(t *testing.T, opts map[string]string) *smtpsender.Sender {
	t.Helper()
	s := smtpsender.New(nil)
	s.SetGetenv(noEnv)
	if err := s.Configure(context.Background(), opts); err != nil {
		t.Fatalf("Configure(%v): %v", opts, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func message(n int) *sdk.Message {
	return &sdk.Message{
		CampaignID:  1,
		RecipientID: int64(n),
		MessageID:   fmt.Sprintf("<1.%d@campaignd.test>", n),
		From:        "Sender <sender@example.com>",
		To:          fmt.Sprintf("Rcpt %d <rcpt%d@example.org>", n, n),
		Subject:     fmt.Sprintf("Message %d", n),
		Text:        "Hello\n.\nA line with only a dot above.\n",
		HTML:        "<p>Hello</p>",
		Date:        time.Now(),
	}
}

func send(t *testing.T, s *smtpsender.Sender, m *sdk.Message) (*sdk.Receipt, *sdk.Error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := s.Send(ctx, m)
	if err == nil {
		return r, nil
	}
	var e *sdk.Error
	if !errors.As(err, &e) {
		t.Fatalf("Send returned %T %v, want *sdk.Error", err, err)
	}
	return nil, e
}

func mustSend(t *testing.T, s *smtpsender.Sender, m *sdk.Message) *sdk.Receipt {
	t.Helper()
	r, e := send(t, s, m)
	if e != nil {
		t.Fatalf("Send: %v", e)
	}
	return r
}

// expect checks class, codes and that the message mentions each of texts.
func expect(t *testing.T, e *sdk.Error, class sdk.Class, code int, enhanced string, texts ...string) {
	t.Helper()
	if e == nil {
		t.Fatalf("Send succeeded, want %s %d %s", class, code, enhanced)
	}
	if e.Class != class || e.SMTPCode != code || e.EnhancedCode != enhanced {
		t.Fatalf("got %s %d %q (%q), want %s %d %q", e.Class, e.SMTPCode, e.EnhancedCode, e.Message, class, code, enhanced)
	}
	for _, x := range texts {
		if !strings.Contains(strings.ToLower(e.Message), strings.ToLower(x)) {
			t.Errorf("message %q does not mention %q", e.Message, x)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
