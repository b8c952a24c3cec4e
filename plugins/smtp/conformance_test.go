package main_test

import (
	"bytes"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
	"github.com/campaignd/campaignd/sdk"
	"github.com/campaignd/campaignd/sdk/sdktest"
)

// TestConformance runs the sdk's conformance kit against the built plugin,
// with the fake server scripted to produce every class.
func TestConformance(t *testing.T) {
	srv := startServer(t, smtptest.Options{
		TLS:         "starttls",
		Users:       map[string]string{"sender": "s3cret"},
		RequireAuth: true,
		Faults: []smtptest.Fault{
			{Stage: smtptest.Rcpt, Rcpt: "nobody@example.com", Code: 550, Enhanced: "5.1.1", Text: "No such user"},
			{Stage: smtptest.Rcpt, Rcpt: "legacy@example.com", Code: 550, Text: "User unknown"},
			{Stage: smtptest.Rcpt, Rcpt: "busy@example.com", Code: 451, Enhanced: "4.7.1", Text: "Rate limit exceeded, retry in 20 seconds"},
			{Stage: smtptest.Rcpt, Rcpt: "grey@example.com", Code: 450, Enhanced: "4.2.0", Text: "Greylisted, please come back later"},
			{Stage: smtptest.Rcpt, Rcpt: "stall@example.com", Stall: 30 * time.Second, Code: 250, Text: "too late"},
			{Stage: smtptest.EndOfData, Rcpt: "spam@example.com", Code: 554, Enhanced: "5.7.1", Text: "Message rejected as spam"},
			{Stage: smtptest.EndOfData, Rcpt: "closing@example.com", Code: 421, Enhanced: "4.4.2", Text: "Timeout, closing"},
			{Stage: smtptest.DataBody, Rcpt: "drop@example.com", Drop: true},
		},
	})
	plain := startServer(t, smtptest.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closedPort, _ := net.SplitHostPort(ln.Addr().String())
	_ = ln.Close()

	to := func(addr string) func(*sdk.Message) { return func(m *sdk.Message) { m.To = addr } }
	sdktest.Run(t, sdktest.Config{
		PluginPath: pluginPath,
		Options: map[string]string{
			"host": srv.Host, "port": srv.Port, "tls": "starttls", "insecure_skip_verify": "true",
			"username": "sender", "password": "s3cret", "helo": "sdktest.example.com", "timeout": "5s",
		},
		SendTimeout: 20 * time.Second,
		Scenarios: []sdktest.Scenario{
			{Name: "bounced 5.1.1", Edit: to("nobody@example.com"),
				Want: sdk.Bounced("RCPT TO: No such user").WithSMTP(550, "5.1.1")},
			{Name: "bounced by text", Edit: to("legacy@example.com"),
				Want: sdk.Bounced("User unknown").WithSMTP(550, "")},
			{Name: "throttled with retry hint", Edit: to("busy@example.com"),
				Want: sdk.Throttled(20*time.Second, "Rate limit exceeded").WithSMTP(451, "4.7.1")},
			{Name: "transient 4xx", Edit: to("grey@example.com"),
				Want: sdk.Transient("Greylisted").WithSMTP(450, "4.2.0")},
			{Name: "permanent at end of DATA", Edit: to("spam@example.com"),
				Want: sdk.Permanent("end of DATA: Message rejected as spam").WithSMTP(554, "5.7.1")},
			{Name: "421 at end of DATA", Edit: to("closing@example.com"),
				Want: sdk.Throttled(0, "Timeout, closing").WithSMTP(421, "4.4.2")},
			{Name: "dropped mid-DATA", Edit: to("drop@example.com"),
				Want: sdk.Transient("DATA: connection closed by server")},
			{Name: "wrong password", Options: map[string]string{"password": "wrong"},
				Want: sdk.ConfigError("AUTH: Authentication failed").WithSMTP(535, "5.7.8")},
			{Name: "connection refused", Options: map[string]string{"host": "127.0.0.1", "port": closedPort},
				Want: sdk.Transient("connection refused")},
			{Name: "STARTTLS missing", Options: map[string]string{"host": plain.Host, "port": plain.Port},
				Want: sdk.ConfigError("does not offer STARTTLS")},
		},
		Stall:        &sdktest.Scenario{Name: "stalled RCPT", Edit: to("stall@example.com")},
		RequireCheck: true,
		BadCheckOptions: []map[string]string{
			{"password": "wrong"},
			{"host": "127.0.0.1", "port": closedPort},
			{"host": plain.Host, "port": plain.Port},
		},
		BadOptions: []map[string]string{
			{"tls": "sometimes"},
			{"colour": "blue"},
			{"port": "0"},
			{"timeout": "soon"},
			{"auth": "cram-md5"},
			{"host": "", "port": ""},
		},
		Verify: func(t *testing.T, msg *sdk.Message, r *sdk.Receipt) {
			if !strings.HasPrefix(r.ProviderID, "Q") || !strings.HasPrefix(r.Response, "250 2.0.0 Ok: queued as Q") {
				t.Errorf("receipt %+v: want the server's queue id", r)
			}
			rcpt, err := mail.ParseAddress(msg.To)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range srv.Messages() {
				if m.To != rcpt.Address || m.User != "sender" {
					continue
				}
				pm, err := mail.ReadMessage(bytes.NewReader(m.Data))
				if err == nil && pm.Header.Get("Message-ID") == msg.MessageID {
					return
				}
			}
			t.Errorf("server has no message %s for %s", msg.MessageID, rcpt.Address)
		},
	})
}
