package smtptest_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
	"github.com/emersion/go-smtp"
)

func start(t *testing.T, opts smtptest.Options) *smtptest.Server {
	t.Helper()
	s, err := smtptest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// send sends one message with Message-ID id ("" for none) to rcpt.
func send(t *testing.T, s *smtptest.Server, rcpt, id string) error {
	t.Helper()
	c, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := "From: a@example.com\r\nTo: " + rcpt + "\r\nSubject: hi\r\n"
	if id != "" {
		msg += "Message-ID: " + id + "\r\n"
	}
	msg += "\r\nbody\r\n"
	return c.SendMail("a@example.com", []string{rcpt}, strings.NewReader(msg))
}

func TestLeanCountsByMessageID(t *testing.T) {
	s := start(t, smtptest.Options{Lean: true})
	for _, id := range []string{"<1@x>", "<2@x>", "<1@x>", ""} {
		if err := send(t, s, "b@example.com", id); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := s.Counts(), (smtptest.Counts{Messages: 4, Duplicates: 1, NoMessageID: 1}); got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("a lean server kept %d messages", n)
	}
	if _, err := smtptest.Start(smtptest.Options{Lean: true, Faults: []smtptest.Fault{{Stage: smtptest.Rcpt, Code: 550}}}); err == nil {
		t.Error("a lean server took faults")
	}
}

func TestRecordsAndFaults(t *testing.T) {
	s := start(t, smtptest.Options{Faults: []smtptest.Fault{
		{Stage: smtptest.Rcpt, Rcpt: "Busy@example.com", Code: 451, Enhanced: "4.3.0", Text: "busy", Times: 1},
		{Stage: smtptest.EndOfData, Rcpt: "spam@example.com", Code: 554, Enhanced: "5.7.1", Text: "spam"},
		{Stage: smtptest.EndOfData, Rcpt: "drop@example.com", Drop: true},
	}})
	var se *smtp.SMTPError
	if err := send(t, s, "busy@example.com", "<1@x>"); !errors.As(err, &se) || se.Code != 451 {
		t.Errorf("first send to busy: %v, want 451", err)
	}
	if err := send(t, s, "busy@example.com", "<1@x>"); err != nil {
		t.Errorf("second send to busy: %v", err)
	}
	if err := send(t, s, "spam@example.com", "<2@x>"); !errors.As(err, &se) || se.Code != 554 {
		t.Errorf("send to spam: %v, want 554", err)
	}
	if err := send(t, s, "drop@example.com", "<3@x>"); err == nil {
		t.Error("send to drop: no error")
	}
	msgs := s.Messages()
	if len(msgs) != 2 || msgs[0].To != "busy@example.com" || msgs[0].MessageID != "<1@x>" || msgs[0].Subject != "hi" || msgs[0].Committed ||
		msgs[1].To != "drop@example.com" || !msgs[1].Committed {
		t.Errorf("messages %+v: want busy's, then drop's taken before the drop", msgs)
	}
	if n := s.RcptAttempts("BUSY@example.com"); n != 2 {
		t.Errorf("%d RCPT attempts for busy, want 2", n)
	}
	if got := s.Received(); got["busy@example.com"] != 1 || got["spam@example.com"] != 0 {
		t.Errorf("received %v", got)
	}
}

func TestReplyDelayRecordsFirst(t *testing.T) {
	s := start(t, smtptest.Options{ReplyDelay: func() time.Duration { return time.Minute }})
	done := make(chan error, 1)
	go func() { done <- send(t, s, "b@example.com", "<1@x>") }()
	if err := s.WaitStalling(1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if msgs := s.Messages(); len(msgs) != 1 || !msgs[0].Committed {
		t.Errorf("messages %+v while the reply is held back, want one, committed", msgs)
	}
	s.Close() // cuts the stall short
	<-done
}
