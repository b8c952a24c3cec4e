package smtptest

import (
	"bytes"
	"testing"
)

// TestLeanDataAllocates nothing per message once warm: the benchmarks'
// figures depend on the sink doing almost nothing.
func TestLeanDataAllocates(t *testing.T) {
	s, err := Start(Options{Lean: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	raw := []byte("From: a@example.com\r\nmessage-id:  <c1.r2@example.com> \r\nSubject: hi\r\n\r\n" + string(bytes.Repeat([]byte("body line\r\n"), 100)))
	if got := string(headerMessageID(raw)); got != "<c1.r2@example.com>" {
		t.Fatalf("Message-ID %q", got)
	}
	if headerMessageID([]byte("Subject: x\r\n\r\nMessage-ID: <body@x>\r\n")) != nil {
		t.Error("Message-ID taken from the body")
	}
	ls := &leanSession{s: s}
	r := bytes.NewReader(raw)
	if n := testing.AllocsPerRun(100, func() {
		r.Reset(raw)
		if err := ls.Data(r); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per message, want 0", n)
	}
	if c := s.Counts(); c.Messages != 101 || c.Duplicates != 100 || c.NoMessageID != 0 {
		t.Errorf("counts %+v", c)
	}
}
