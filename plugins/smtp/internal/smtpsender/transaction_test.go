package smtpsender_test

import (
	"slices"
	"testing"

	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
	"github.com/campaignd/campaignd/sdk"
)

// TestTransactionWrites counts the writes the server has to read per
// message on a warm session: two with PIPELINING (MAIL, RCPT and DATA
// together; the body with its final dot), four without (one per command,
// then the body).
func TestTransactionWrites(t *testing.T) {
	const n = 20
	for _, tc := range []struct {
		pipelining bool
		max, min   int64
	}{{true, 2 * n, 2 * n}, {false, 4 * n, 4 * n}} {
		t.Run(mode(tc.pipelining), func(t *testing.T) {
			srv := startServer(t, smtptest.Options{NoPipelining: !tc.pipelining})
			s := configure(t, options(srv, "none", nil))
			mustSend(t, s, message(0)) // session setup
			before := srv.Reads()
			for i := 1; i <= n; i++ {
				mustSend(t, s, message(i))
			}
			reads := srv.Reads() - before
			// A write may reach the server in two reads, never two
			// writes in one (each waits for a reply): max is exact for
			// the stepwise path, min bounds both.
			if reads > tc.max+n/4 || reads < tc.min {
				t.Errorf("%d server reads for %d messages, want %d", reads, n, tc.max)
			}
			if c := srv.Connections(); c != 1 {
				t.Errorf("%d connections, want 1", c)
			}
			if got := srv.Counts(); got.Messages != n+1 {
				t.Errorf("server took %d messages, want %d", got.Messages, n+1)
			}
		})
	}
}

// TestPipelinedRejections: a refusal inside a pipelined write is the
// outcome at its own stage, the replies owed after it are read, and the
// session goes on in step.
func TestPipelinedRejections(t *testing.T) {
	t.Run("rcpt refused, mail accepted", func(t *testing.T) {
		srv := startServer(t, smtptest.Options{Faults: []smtptest.Fault{
			{Stage: smtptest.Rcpt, Code: 550, Enhanced: "5.1.1", Text: "no such user", Times: 1}}})
		s := configure(t, options(srv, "none", nil))
		_, e := send(t, s, message(1))
		expect(t, e, sdk.ClassBounced, 550, "5.1.1", "RCPT TO", "no such user")
		mustSend(t, s, message(2))
		want := []string{"EHLO", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "DATA"}
		if c := srv.Commands(); !slices.Equal(c, want) {
			t.Errorf("commands %v, want %v", c, want)
		}
		if c := srv.Connections(); c != 1 {
			t.Errorf("%d connections, want 1", c)
		}
		if got := srv.Received(); len(got) != 1 || got["rcpt2@example.org"] != 1 {
			t.Errorf("received %v, want only message 2", got)
		}
	})
	t.Run("data 554", func(t *testing.T) {
		srv := startServer(t, smtptest.Options{Faults: []smtptest.Fault{
			{Stage: smtptest.Data, Code: 554, Enhanced: "5.5.1", Text: "No valid recipients", Times: 1}}})
		s := configure(t, options(srv, "none", nil))
		_, e := send(t, s, message(1))
		expect(t, e, sdk.ClassPermanent, 554, "5.5.1", "DATA")
		mustSend(t, s, message(2))
		if c := srv.Connections(); c != 1 {
			t.Errorf("%d connections, want 1", c)
		}
	})
	t.Run("354 after a refused rcpt", func(t *testing.T) {
		// A server that should have refused DATA (RFC 2920 3.1) but
		// answers 354: the client ends the empty body with a lone dot,
		// keeps the RCPT refusal as the outcome and drops the session.
		srv := startServer(t, smtptest.Options{Faults: []smtptest.Fault{
			{Stage: smtptest.Rcpt, Code: 550, Enhanced: "5.1.1", Text: "no such user", Times: 1},
			{Stage: smtptest.Data, Code: 354, Text: "go ahead", Times: 1}}})
		s := configure(t, options(srv, "none", nil))
		_, e := send(t, s, message(1))
		expect(t, e, sdk.ClassBounced, 550, "5.1.1", "no such user")
		mustSend(t, s, message(2))
		if c := srv.Connections(); c != 2 {
			t.Errorf("%d connections, want 2 (the confused session replaced)", c)
		}
		if got := srv.Received(); len(got) != 1 || got["rcpt2@example.org"] != 1 {
			t.Errorf("received %v, want only message 2", got)
		}
	})
	t.Run("dropped after the write", func(t *testing.T) {
		for _, stage := range []string{smtptest.Mail, smtptest.Rcpt, smtptest.Data} {
			srv := startServer(t, smtptest.Options{Faults: []smtptest.Fault{{Stage: stage, Drop: true, Times: 1}}})
			s := configure(t, options(srv, "none", nil))
			_, e := send(t, s, message(1))
			if e == nil || e.Class != sdk.ClassTransient || e.SMTPCode != 0 {
				t.Fatalf("drop at %s: got %v, want transient without code", stage, e)
			}
			mustSend(t, s, message(2))
			if got := srv.Received(); len(got) != 1 {
				t.Errorf("drop at %s: received %v, want only message 2", stage, got)
			}
		}
	})
}
