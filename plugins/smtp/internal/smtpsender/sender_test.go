package smtpsender_test

import (
	"bytes"
	"context"
	"errors"
	"mime"
	"net"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/campaignd/campaignd/plugins/smtp/internal/smtpsender"
	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
	"github.com/campaignd/campaignd/sdk"
)

func TestSendDelivers(t *testing.T) {
	srv := startServer(t, smtptest.Options{})
	s := configure(t, options(srv, "none", nil))
	m := message(1)
	m.Subject = "Grüße"
	r := mustSend(t, s, m)
	if r.ProviderID != "Q0001" {
		t.Errorf("ProviderID = %q, want the queue id Q0001", r.ProviderID)
	}
	if r.Response != "250 2.0.0 Ok: queued as Q0001" {
		t.Errorf("Response = %q", r.Response)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages", len(msgs))
	}
	got := msgs[0]
	if got.From != "sender@example.com" || got.To != "rcpt1@example.org" {
		t.Errorf("envelope = %q -> %q", got.From, got.To)
	}
	pm, err := mail.ReadMessage(bytes.NewReader(got.Data))
	if err != nil {
		t.Fatalf("parse delivered message: %v", err)
	}
	subj, _ := new(mime.WordDecoder).DecodeHeader(pm.Header.Get("Subject"))
	if subj != "Grüße" || pm.Header.Get("Message-ID") != m.MessageID {
		t.Errorf("delivered Subject %q Message-ID %q", subj, pm.Header.Get("Message-ID"))
	}
	// The body's lone "." line survived dot-stuffing.
	if !bytes.Contains(got.Data, []byte("\r\n.\r\nA line with only a dot")) {
		t.Errorf("dot line mangled:\n%s", got.Data)
	}
	if c := srv.Commands(); !slices.Contains(c, "EHLO") || slices.Contains(c, "AUTH") {
		t.Errorf("commands = %v", c)
	}
}

// TestReturnPathIsMailFrom: a message's ReturnPath (a VERP address) is the
// envelope sender, while the From header stays the campaign's; a bad one
// is the sender's configuration, and nothing is sent.
func TestReturnPathIsMailFrom(t *testing.T) {
	srv := startServer(t, smtptest.Options{})
	s := configure(t, options(srv, "none", nil))
	m := message(1)
	m.ReturnPath = "bounces+7.42@example.com"
	mustSend(t, s, m)
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].From != "bounces+7.42@example.com" {
		t.Fatalf("envelope sender = %v, want the return path", msgs)
	}
	pm, err := mail.ReadMessage(bytes.NewReader(msgs[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	if from := pm.Header.Get("From"); !strings.Contains(from, "sender@example.com") || pm.Header.Get("Return-Path") != "" {
		t.Errorf("From header %q, Return-Path header %q: the return path belongs in the envelope only", from, pm.Header.Get("Return-Path"))
	}
	m.ReturnPath = "not an address"
	_, err = s.Send(context.Background(), m)
	if e := sdk.AsError(err); e == nil || e.Class != sdk.ClassConfig {
		t.Errorf("bad return path: %v, want a config error", err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("server got %d messages, want the first only", n)
	}
}

func TestConnectionReuseSequential(t *testing.T) {
	srv := startServer(t, smtptest.Options{})
	s := configure(t, options(srv, "none", nil))
	for i := 1; i <= 10; i++ {
		mustSend(t, s, message(i))
	}
	if n := srv.Connections(); n != 1 {
		t.Errorf("10 sequential sends used %d connections, want 1", n)
	}
	if n := len(srv.Messages()); n != 10 {
		t.Errorf("server got %d messages", n)
	}
	if dialed, idle := s.Stats(); dialed != 1 || idle != 1 {
		t.Errorf("Stats = %d dialed, %d idle", dialed, idle)
	}
}

func TestConcurrentSendsBoundedConnections(t *testing.T) {
	for _, tc := range []struct {
		workers, max int
	}{{5, 5}, {10, 3}} {
		srv := startServer(t, smtptest.Options{})
		s := configure(t, options(srv, "none", map[string]string{"max_connections": strconv.Itoa(tc.max)}))
		var wg sync.WaitGroup
		errs := make(chan error, tc.workers*4)
		for w := 0; w < tc.workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 4; i++ {
					if _, err := s.Send(context.Background(), message(w*10+i)); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("send: %v", err)
		}
		if n := len(srv.Messages()); n != tc.workers*4 {
			t.Errorf("%d workers: server got %d messages", tc.workers, n)
		}
		if n := srv.Connections(); n > tc.max || n < 1 {
			t.Errorf("%d workers, max_connections %d: %d connections", tc.workers, tc.max, n)
		}
		if n := srv.MaxActive(); n > tc.max {
			t.Errorf("%d connections open at once, cap %d", n, tc.max)
		}
	}
}

func TestAuth(t *testing.T) {
	users := map[string]string{"user@example.com": "s3cret"}
	for _, mech := range []string{"plain", "login"} {
		for _, tlsMode := range []string{"none", "starttls", "implicit"} {
			t.Run(mech+"/"+tlsMode, func(t *testing.T) {
				srv := startServer(t, smtptest.Options{TLS: tlsMode, Users: users, RequireAuth: true})
				s := configure(t, options(srv, tlsMode, map[string]string{
					"username": "user@example.com", "password": "s3cret", "auth": mech,
				}))
				mustSend(t, s, message(1))
				mustSend(t, s, message(2))
				msgs := srv.Messages()
				if len(msgs) != 2 || msgs[0].User != "user@example.com" {
					t.Fatalf("messages = %+v", msgs)
				}
				if srv.Connections() != 1 {
					t.Errorf("%d connections for two sends", srv.Connections())
				}
				if tlsMode == "starttls" {
					// Only the pre-TLS dialogue is visible in plaintext.
					if c := srv.Commands(); !slices.Equal(c, []string{"EHLO", "STARTTLS"}) {
						t.Errorf("plaintext commands = %v, want [EHLO STARTTLS]", c)
					}
				}
			})
		}
	}
}

func TestAuthDefaultsToPlainWithUsername(t *testing.T) {
	srv := startServer(t, smtptest.Options{Users: map[string]string{"u": "p"}, RequireAuth: true, Mechanisms: []string{"PLAIN"}})
	s := configure(t, options(srv, "none", map[string]string{"username": "u", "password": "p"}))
	mustSend(t, s, message(1))
}

func TestAuthFailures(t *testing.T) {
	users := map[string]string{"u": "right"}
	t.Run("wrong password is config", func(t *testing.T) {
		srv := startServer(t, smtptest.Options{Users: users, RequireAuth: true})
		s := configure(t, options(srv, "none", map[string]string{"username": "u", "password": "wrong"}))
		_, e := send(t, s, message(1))
		expect(t, e, sdk.ClassConfig, 535, "5.7.8", "AUTH", "authentication failed")
		if len(srv.Messages()) != 0 {
			t.Error("message delivered despite failed AUTH")
		}
	})
	t.Run("server without AUTH", func(t *testing.T) {
		srv := startServer(t, smtptest.Options{})
		s := configure(t, options(srv, "none", map[string]string{"username": "u", "password": "p"}))
		_, e := send(t, s, message(1))
		expect(t, e, sdk.ClassConfig, 0, "", "does not offer AUTH")
	})
	t.Run("mechanism not offered", func(t *testing.T) {
		srv := startServer(t, smtptest.Options{Users: users, Mechanisms: []string{"PLAIN"}})
		s := configure(t, options(srv, "none", map[string]string{"username": "u", "password": "right", "auth": "login"}))
		_, e := send(t, s, message(1))
		expect(t, e, sdk.ClassConfig, 0, "", "offers AUTH PLAIN, not LOGIN")
	})
	t.Run("no auth configured but required", func(t *testing.T) {
		srv := startServer(t, smtptest.Options{Users: users, RequireAuth: true})
		s := configure(t, options(srv, "none", nil))
		_, e := send(t, s, message(1))
		expect(t, e, sdk.ClassConfig, 530, "5.7.0", "MAIL FROM", "authentication required")
	})
}

func TestTLS(t *testing.T) {
	t.Run("starttls", func(t *testing.T) {
		srv := startServer(t, smtptest.Options{TLS: "starttls"})
		s := configure(t, options(srv, "starttls", nil))
		mustSend(t, s, message(1))
		mustSend(t, s, message(2))
		if c := srv.Commands(); !slices.Equal(c, []string{"EHLO", "STARTTLS"}) {
			t.Errorf("plaintext commands = %v: something was sent in clear after STARTTLS", c)
		}
		if srv.Connections() != 1 {
			t.Errorf("%d connections", srv.Connections())
		}
	})
	t.Run("implicit", func(t *testing.T) {
		srv := startServer(t, smtptest.Options{TLS: "implicit"})
		s := configure(t, options(srv, "implicit", nil))
		mustSend(t, s, message(1))
		if len(srv.Messages()) != 1 {
			t.Fatal("not delivered")
		}
	})
	t.Run("starttls required but not offered", func(t *testing.T) {
		srv := startServer(t, smtptest.Options{})
		s := configure(t, options(srv, "starttls", nil))
		_, e := send(t, s, message(1))
		expect(t, e, sdk.ClassConfig, 0, "", "does not offer STARTTLS")
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		srv := startServer(t, smtptest.Options{TLS: "starttls"})
		s := configure(t, options(srv, "starttls", map[string]string{"insecure_skip_verify": ""}))
		_, e := send(t, s, message(1))
		expect(t, e, sdk.ClassConfig, 0, "", "certificate")
	})
	t.Run("implicit against plaintext server", func(t *testing.T) {
		srv := startServer(t, smtptest.Options{})
		s := configure(t, options(srv, "implicit", map[string]string{"timeout": "1s"}))
		_, e := send(t, s, message(1))
		if e == nil || (e.Class != sdk.ClassConfig && e.Class != sdk.ClassTransient) {
			t.Fatalf("got %v, want a config (or transient) TLS failure", e)
		}
	})
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	_ = ln.Close()
	s := configure(t, map[string]string{"host": "127.0.0.1", "port": port, "tls": "none"})
	_, e := send(t, s, message(1))
	expect(t, e, sdk.ClassTransient, 0, "", "connect", "connection refused")
}

func TestDNSFailureIsTransient(t *testing.T) {
	s := configure(t, map[string]string{"host": "no-such-host.invalid", "port": "2525", "tls": "none", "timeout": "2s"})
	_, e := send(t, s, message(1))
	expect(t, e, sdk.ClassTransient, 0, "", "connect")
}

func TestDropMidDataThenRecover(t *testing.T) {
	srv := startServer(t, smtptest.Options{Faults: []smtptest.Fault{{Stage: smtptest.DataBody, Drop: true, Times: 1}}})
	s := configure(t, options(srv, "none", nil))
	_, e := send(t, s, message(1))
	if e == nil || e.Class != sdk.ClassTransient || e.SMTPCode != 0 {
		t.Fatalf("drop mid-DATA: got %v, want transient without code", e)
	}
	mustSend(t, s, message(2))
	if n := srv.Connections(); n != 2 {
		t.Errorf("%d connections: the broken one must be replaced", n)
	}
	if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].To != "rcpt2@example.org" {
		t.Errorf("messages = %+v", msgs)
	}
}

func TestStallPastTimeout(t *testing.T) {
	for _, stage := range []string{smtptest.Greeting, smtptest.EHLO, smtptest.Mail, smtptest.Rcpt, smtptest.EndOfData} {
		t.Run(stage, func(t *testing.T) {
			srv := startServer(t, smtptest.Options{Faults: []smtptest.Fault{
				{Stage: stage, Stall: 5 * time.Second, Code: 250, Text: "late", Times: 1},
			}})
			s := configure(t, options(srv, "none", map[string]string{"timeout": "300ms"}))
			start := time.Now()
			_, e := send(t, s, message(1))
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("took %v with a 300ms timeout", took)
			}
			expect(t, e, sdk.ClassTransient, 0, "", "timed out")
			mustSend(t, s, message(2))
		})
	}
}

func TestContextDeadlineAndCancel(t *testing.T) {
	srv := startServer(t, smtptest.Options{Faults: []smtptest.Fault{{Stage: smtptest.EndOfData, Stall: 1500 * time.Millisecond, Code: 250, Text: "late"}}})
	s := configure(t, options(srv, "none", map[string]string{"timeout": "30s"}))

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Send(ctx, message(1))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("ctx deadline 300ms, Send took %v", took)
	}
	e := sdk.AsError(err)
	expect(t, e, sdk.ClassTransient, 0, "", "deadline")

	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel2)
	start = time.Now()
	_, err = s.Send(ctx2, message(2))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("cancelled after 200ms, Send took %v", took)
	}
	expect(t, sdk.AsError(err), sdk.ClassTransient, 0, "", "canceled")

	// Both aborted sessions were closed, not pooled.
	if _, idle := s.Stats(); idle != 0 {
		t.Errorf("%d idle connections after aborted sends", idle)
	}
	waitFor(t, "server to see the aborted connections close", func() bool { return srv.Active() == 0 })
}

func TestStaleIdleConnectionIsReplaced(t *testing.T) {
	for _, f := range []smtptest.Fault{
		{Stage: smtptest.Mail, Drop: true, Times: 1},
		{Stage: smtptest.Mail, Code: 421, Enhanced: "4.4.2", Text: "Idle timeout, bye", Times: 1},
	} {
		srv := startServer(t, smtptest.Options{})
		s := configure(t, options(srv, "none", nil))
		mustSend(t, s, message(1))
		srv.SetFaults(f)
		r := mustSend(t, s, message(2)) // reused session fails at MAIL, redialed
		if r.ProviderID != "Q0002" {
			t.Errorf("receipt %+v", r)
		}
		if n := srv.Connections(); n != 2 {
			t.Errorf("%d connections, want 2", n)
		}
	}
}

func TestIdleTimeoutClosesConnections(t *testing.T) {
	srv := startServer(t, smtptest.Options{})
	s := configure(t, options(srv, "none", map[string]string{"idle_timeout": "100ms"}))
	mustSend(t, s, message(1))
	waitFor(t, "the idle connection to be closed", func() bool { return srv.Active() == 0 })
	if c := srv.Commands(); c[len(c)-1] != "QUIT" {
		t.Errorf("idle connection closed without QUIT: %v", c)
	}
	mustSend(t, s, message(2))
	if n := srv.Connections(); n != 2 {
		t.Errorf("%d connections", n)
	}
}

func TestNonASCIIAddresses(t *testing.T) {
	m := message(1)
	m.To = "Jörg <jörg@exämple.org>"
	t.Run("without SMTPUTF8", func(t *testing.T) {
		srv := startServer(t, smtptest.Options{})
		s := configure(t, options(srv, "none", nil))
		_, e := send(t, s, m)
		expect(t, e, sdk.ClassPermanent, 0, "", "SMTPUTF8")
		mustSend(t, s, message(2)) // the session is still fine
		if srv.Connections() != 1 {
			t.Errorf("%d connections", srv.Connections())
		}
	})
	// Issue 12 item 5: a non-ASCII From fails every message alike, so it
	// is a configuration error (the campaign pauses), not a permanent
	// failure of each recipient.
	t.Run("From without SMTPUTF8", func(t *testing.T) {
		srv := startServer(t, smtptest.Options{})
		s := configure(t, options(srv, "none", nil))
		m := message(3)
		m.From = "Jörg <jörg@exämple.org>"
		_, e := send(t, s, m)
		expect(t, e, sdk.ClassConfig, 0, "", "From address")
		if len(srv.Messages()) != 0 {
			t.Errorf("sent %d messages", len(srv.Messages()))
		}
	})
	t.Run("with SMTPUTF8", func(t *testing.T) {
		srv := startServer(t, smtptest.Options{SMTPUTF8: true})
		s := configure(t, options(srv, "none", nil))
		mustSend(t, s, m)
		if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].To != "jörg@exämple.org" {
			t.Errorf("messages %+v", msgs)
		}
	})
}

// An internationalised domain with an ASCII local part goes to a server
// without SMTPUTF8 as A-labels (punycode), in the envelope and in the
// From and To headers; a server with SMTPUTF8 gets it as written (issue
// 12 item 11).
func TestIDNDomainsWithoutSMTPUTF8(t *testing.T) {
	m := message(1)
	m.From = "News <news@bücher.example>"
	m.To = "Jörg <joerg@EXÄMPLE.org>"
	m.ReplyTo = "help@bücher.example"
	t.Run("without SMTPUTF8", func(t *testing.T) {
		srv := startServer(t, smtptest.Options{})
		s := configure(t, options(srv, "none", nil))
		mustSend(t, s, m)
		msgs := srv.Messages()
		if len(msgs) != 1 || msgs[0].From != "news@xn--bcher-kva.example" || msgs[0].To != "joerg@xn--exmple-cua.org" {
			t.Fatalf("envelope %+v, want A-labels", msgs)
		}
		h := msgs[0].Header
		for _, f := range []string{"From", "To", "Reply-To"} {
			if v := h.Get(f); strings.ContainsFunc(v, func(r rune) bool { return r >= 0x80 }) || !strings.Contains(v, "@xn--") {
				t.Errorf("header %s: %q, want the A-label domain", f, v)
			}
		}
		if msgs[0].Subject != m.Subject {
			t.Errorf("subject %q", msgs[0].Subject)
		}
	})
	t.Run("with SMTPUTF8", func(t *testing.T) {
		srv := startServer(t, smtptest.Options{SMTPUTF8: true})
		s := configure(t, options(srv, "none", nil))
		mustSend(t, s, m)
		if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].From != "news@bücher.example" {
			t.Errorf("messages %+v", msgs)
		}
	})
}

func TestBadMessagesAreNotSent(t *testing.T) {
	srv := startServer(t, smtptest.Options{})
	s := configure(t, options(srv, "none", nil))
	m := message(1)
	m.Subject = "hi\r\nBcc: victim@example.com"
	_, e := send(t, s, m)
	expect(t, e, sdk.ClassPermanent, 0, "", "subject")
	m = message(2)
	m.To = "not an address"
	_, e = send(t, s, m)
	expect(t, e, sdk.ClassPermanent, 0, "", "invalid to")
	m = message(3)
	m.From = "nope"
	_, e = send(t, s, m)
	expect(t, e, sdk.ClassConfig, 0, "", "invalid from")
	if _, e := send(t, s, nil); e == nil || e.Class != sdk.ClassPermanent {
		t.Errorf("nil message: %v", e)
	}
	if srv.Connections() != 0 {
		t.Errorf("a connection was opened for messages that cannot be sent")
	}
}

func TestSendBeforeConfigure(t *testing.T) {
	s := smtpsender.New(nil)
	_, err := s.Send(context.Background(), message(1))
	var e *sdk.Error
	if !errors.As(err, &e) || e.Class != sdk.ClassConfig {
		t.Fatalf("got %v, want config error", err)
	}
}

func TestReconfigureClosesOldPool(t *testing.T) {
	a := startServer(t, smtptest.Options{})
	b := startServer(t, smtptest.Options{})
	s := configure(t, options(a, "none", nil))
	mustSend(t, s, message(1))
	if err := s.Configure(context.Background(), options(b, "none", nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "old server's connection to close", func() bool { return a.Active() == 0 })
	mustSend(t, s, message(2))
	if len(a.Messages()) != 1 || len(b.Messages()) != 1 {
		t.Errorf("messages a=%d b=%d", len(a.Messages()), len(b.Messages()))
	}
}

func TestInfo(t *testing.T) {
	srv := startServer(t, smtptest.Options{})
	s := configure(t, options(srv, "none", map[string]string{"max_connections": "7"}))
	info, err := s.Info(context.Background())
	if err != nil || info.Name != "smtp" || info.Version == "" || info.MaxConcurrency != 7 ||
		!slices.Contains(info.Options, "host") || !slices.Equal(info.SecretOptions, []string{"password"}) {
		t.Errorf("Info = %+v, %v", info, err)
	}
}

func TestReceiptFallsBackToMessageID(t *testing.T) {
	srv := startServer(t, smtptest.Options{Faults: []smtptest.Fault{{Stage: smtptest.EndOfData, Code: 250, Enhanced: "2.0.0", Text: "Accepted"}}})
	s := configure(t, options(srv, "none", nil))
	m := message(9)
	r := mustSend(t, s, m)
	if r.ProviderID != m.MessageID || r.Response != "250 2.0.0 Accepted" {
		t.Errorf("receipt = %+v", r)
	}
}

// TestStallWhileReceivingBody: a server that stops reading the message
// body must not block Send beyond timeout (go-smtp sets no deadline there).
func TestStallWhileReceivingBody(t *testing.T) {
	if raceEnabled {
		t.Skip("timing of a 6 MiB transfer is meaningless under the race detector")
	}
	srv := startServer(t, smtptest.Options{SmallReceiveBuffer: true, Faults: []smtptest.Fault{{Stage: smtptest.DataBody, Drop: true, Stall: 30 * time.Second}}})
	s := configure(t, options(srv, "none", map[string]string{"timeout": "300ms"}))
	m := message(1)
	// 6 MiB: more than the client's send buffer (autotuned up to 4 MiB on
	// Linux) and the server's shrunken receive buffer hold together.
	m.Text = strings.Repeat("0123456789abcdef ", 6<<16)
	start := time.Now()
	_, e := send(t, s, m)
	// Without the guard the send would wait for the server's 30s stall or
	// the 10s ctx (and the error would not say "timed out").
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v with a 300ms timeout", took)
	}
	expect(t, e, sdk.ClassTransient, 0, "", "timed out")
	if !strings.HasPrefix(e.Message, "DATA: ") {
		t.Errorf("failed at %q, want while writing the body (DATA)", e.Message)
	}
}
