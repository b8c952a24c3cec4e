package smtpsender_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
	"github.com/campaignd/campaignd/sdk"
)

// TestFaultMatrix answers a scripted reply at every stage of the dialogue
// and checks the class, the codes and text kept, the retry hint, and what
// happened to the connection: a per-message rejection leaves it reusable
// (after RSET when a transaction was open), anything else replaces it.
func TestFaultMatrix(t *testing.T) {
	type row struct {
		stage    string
		code     int
		enhanced string
		text     string
		class    sdk.Class
		retry    time.Duration
		reuse    bool // next message goes over the same connection
		rset     bool // RSET seen before the next message
	}
	rows := []row{
		// greeting
		{smtptest.Greeting, 421, "4.7.0", "Too many connections from your host", sdk.ClassThrottled, 0, false, false},
		{smtptest.Greeting, 421, "", "Service not available, try again in 90 seconds", sdk.ClassThrottled, 90 * time.Second, false, false},
		{smtptest.Greeting, 450, "", "Temporary local problem", sdk.ClassTransient, 0, false, false},
		{smtptest.Greeting, 554, "5.7.1", "Client host blocked using zen.spamhaus.org", sdk.ClassConfig, 0, false, false},
		// EHLO
		{smtptest.EHLO, 421, "4.3.2", "System not accepting network messages", sdk.ClassThrottled, 0, false, false},
		{smtptest.EHLO, 451, "4.3.0", "Local error in processing", sdk.ClassTransient, 0, false, false},
		{smtptest.EHLO, 554, "5.7.1", "Access denied", sdk.ClassConfig, 0, false, false},
		// AUTH
		{smtptest.Auth, 454, "4.7.0", "Too many login attempts, please try again later", sdk.ClassThrottled, 0, false, false},
		{smtptest.Auth, 535, "5.7.8", "Username and Password not accepted", sdk.ClassConfig, 0, false, false},
		{smtptest.Auth, 534, "5.7.9", "Application-specific password required", sdk.ClassConfig, 0, false, false},
		{smtptest.Auth, 451, "4.3.0", "Authentication backend unavailable", sdk.ClassTransient, 0, false, false},
		// MAIL FROM (a fresh connection: 421 is not retried as stale)
		{smtptest.Mail, 421, "4.7.0", "Try again later, closing connection", sdk.ClassThrottled, 0, false, false},
		{smtptest.Mail, 451, "4.7.1", "Rate limit exceeded, retry in 2 minutes", sdk.ClassThrottled, 2 * time.Minute, true, false},
		{smtptest.Mail, 450, "4.4.5", "Mail system congestion", sdk.ClassThrottled, 0, true, false},
		{smtptest.Mail, 451, "4.3.0", "Temporary lookup failure", sdk.ClassTransient, 0, true, false},
		{smtptest.Mail, 553, "5.1.8", "Sender address rejected: Domain not found", sdk.ClassConfig, 0, true, false},
		{smtptest.Mail, 550, "5.7.1", "Sender not allowed", sdk.ClassConfig, 0, true, false},
		{smtptest.Mail, 552, "5.3.4", "Message size exceeds fixed limit", sdk.ClassPermanent, 0, true, false},
		{smtptest.Mail, 550, "5.4.5", "Daily user sending limit exceeded", sdk.ClassThrottled, 24 * time.Hour, true, false},
		// RCPT TO
		{smtptest.Rcpt, 550, "5.1.1", "The email account that you tried to reach does not exist", sdk.ClassBounced, 0, true, true},
		{smtptest.Rcpt, 550, "", "Requested action not taken: mailbox unavailable", sdk.ClassBounced, 0, true, true},
		{smtptest.Rcpt, 553, "5.0.0", "<x@example.org>: User unknown", sdk.ClassBounced, 0, true, true},
		{smtptest.Rcpt, 550, "5.7.1", "Message rejected: mailbox unavailable (policy)", sdk.ClassPermanent, 0, true, true},
		{smtptest.Rcpt, 554, "5.7.1", "<x@example.org>: Relay access denied", sdk.ClassConfig, 0, true, true},
		{smtptest.Rcpt, 553, "5.7.1", "<s@example.com>: Sender address rejected: not owned by user u", sdk.ClassConfig, 0, true, true},
		{smtptest.Rcpt, 450, "4.2.0", "Recipient address rejected: Greylisted, try again later", sdk.ClassTransient, 0, true, true},
		{smtptest.Rcpt, 452, "4.2.2", "Mailbox full", sdk.ClassTransient, 0, true, true},
		{smtptest.Rcpt, 450, "4.7.1", "Too many messages, slow down", sdk.ClassThrottled, 0, true, true},
		{smtptest.Rcpt, 454, "4.7.1", "Relay access temporarily denied", sdk.ClassThrottled, 0, true, true},
		{smtptest.Rcpt, 421, "4.7.0", "Closing connection", sdk.ClassThrottled, 0, false, false},
		{smtptest.Rcpt, 552, "5.2.2", "Mailbox full", sdk.ClassPermanent, 0, true, true},
		// DATA command
		{smtptest.Data, 451, "", "Requested action aborted: local error", sdk.ClassTransient, 0, true, true},
		{smtptest.Data, 554, "5.5.1", "No valid recipients", sdk.ClassPermanent, 0, true, true},
		{smtptest.Data, 421, "", "Shutting down", sdk.ClassThrottled, 0, false, false},
		// end of DATA
		{smtptest.EndOfData, 554, "5.7.1", "Message rejected as spam", sdk.ClassPermanent, 0, true, false},
		{smtptest.EndOfData, 550, "5.1.1", "Recipient does not exist here", sdk.ClassBounced, 0, true, false},
		{smtptest.EndOfData, 451, "4.3.0", "Queue file write error", sdk.ClassTransient, 0, true, false},
		{smtptest.EndOfData, 452, "4.3.1", "Insufficient system storage", sdk.ClassTransient, 0, true, false},
		{smtptest.EndOfData, 450, "4.7.0", "Message throttled, please wait 30s", sdk.ClassThrottled, 30 * time.Second, true, false},
		{smtptest.EndOfData, 421, "4.4.2", "Timeout, closing", sdk.ClassThrottled, 0, false, false},
	}
	for _, r := range rows {
		for _, pipelining := range []bool{true, false} {
			name := fmt.Sprintf("%s/%d_%s/%s", r.stage, r.code, r.enhanced, mode(pipelining))
			t.Run(name, func(t *testing.T) {
				opts := smtptest.Options{NoPipelining: !pipelining, Faults: []smtptest.Fault{{
					Stage: r.stage, Code: r.code, Enhanced: r.enhanced, Text: r.text, Times: 1,
				}}}
				extra := map[string]string{}
				if r.stage == smtptest.Auth {
					opts.Users = map[string]string{"u": "p"}
					extra["username"], extra["password"] = "u", "p"
				}
				srv := startServer(t, opts)
				s := configure(t, options(srv, "none", extra))
				_, e := send(t, s, message(1))
				expect(t, e, r.class, r.code, r.enhanced, r.text)
				if e.RetryAfter != r.retry {
					t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, r.retry)
				}
				mustSend(t, s, message(2))
				wantConns := 2
				if r.reuse {
					wantConns = 1
				}
				if n := srv.Connections(); n != wantConns {
					t.Errorf("%d connections after the rejection and one more send, want %d", n, wantConns)
				}
				if got := slices.Contains(srv.Commands(), "RSET"); got != r.rset {
					t.Errorf("RSET sent = %v, want %v (commands %v)", got, r.rset, srv.Commands())
				}
			})
		}
	}
}

// mode names a subtest by whether the server offers PIPELINING.
func mode(pipelining bool) string {
	if pipelining {
		return "pipelining"
	}
	return "stepwise"
}

// TestFaultMatrixSTARTTLS covers the STARTTLS stage, which needs a server
// that offers it.
func TestFaultMatrixSTARTTLS(t *testing.T) {
	for _, r := range []struct {
		code     int
		enhanced string
		text     string
		class    sdk.Class
	}{
		{454, "4.7.0", "TLS not available due to local problem", sdk.ClassThrottled},
		{421, "", "Closing", sdk.ClassThrottled},
		{451, "", "Try later", sdk.ClassTransient},
		{554, "5.5.1", "TLS not available", sdk.ClassConfig},
	} {
		t.Run(fmt.Sprint(r.code), func(t *testing.T) {
			srv := startServer(t, smtptest.Options{TLS: "starttls", Faults: []smtptest.Fault{
				{Stage: smtptest.StartTLS, Code: r.code, Enhanced: r.enhanced, Text: r.text, Times: 1},
			}})
			s := configure(t, options(srv, "starttls", nil))
			_, e := send(t, s, message(1))
			expect(t, e, r.class, r.code, r.enhanced, "STARTTLS", r.text)
			mustSend(t, s, message(2))
		})
	}
}

// TestConnectionDropsAtEachStage closes the connection instead of answering.
func TestConnectionDropsAtEachStage(t *testing.T) {
	for _, stage := range []string{smtptest.Greeting, smtptest.EHLO, smtptest.Auth, smtptest.Mail,
		smtptest.Rcpt, smtptest.Data, smtptest.DataBody, smtptest.EndOfData, smtptest.Rset} {
		for _, pipelining := range []bool{true, false} {
			t.Run(stage+"/"+mode(pipelining), func(t *testing.T) {
				opts := smtptest.Options{NoPipelining: !pipelining, Users: map[string]string{"u": "p"}, Faults: []smtptest.Fault{{Stage: stage, Drop: true, Times: 1}}}
				if stage == smtptest.Rset {
					// Reach RSET through a rejected recipient.
					opts.Faults = append(opts.Faults, smtptest.Fault{Stage: smtptest.Rcpt, Code: 550, Enhanced: "5.1.1", Text: "no such user", Times: 1})
				}
				srv := startServer(t, opts)
				s := configure(t, options(srv, "none", map[string]string{"username": "u", "password": "p"}))
				_, e := send(t, s, message(1))
				if stage == smtptest.Rset {
					// The message's own outcome is the rejection; the dead
					// session is noticed at RSET and closed.
					expect(t, e, sdk.ClassBounced, 550, "5.1.1")
				} else if e == nil || e.Class != sdk.ClassTransient || e.SMTPCode != 0 {
					t.Fatalf("drop at %s: got %v, want transient without code", stage, e)
				}
				mustSend(t, s, message(2))
				if n := srv.Connections(); n != 2 {
					t.Errorf("%d connections, want 2 (the dropped one replaced)", n)
				}
			})
		}
	}
}
