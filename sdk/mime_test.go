package sdk_test

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/sdk"
)

func baseMessage() *sdk.Message {
	return &sdk.Message{
		CampaignID:  7,
		RecipientID: 42,
		MessageID:   "<7.42@mail.example.com>",
		From:        `"Ops Team" <ops@example.com>`,
		To:          "Alice Example <alice@example.org>",
		Subject:     "Hello there",
		Date:        time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("X", 2*3600)),
	}
}

// render writes m and checks the invariants every rendered message must
// hold: CRLF only, no line over 998 octets, WriteTo's count matches.
func render(t *testing.T, m *sdk.Message) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := m.WriteTo(&buf)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo returned %d, wrote %d bytes", n, buf.Len())
	}
	raw := buf.Bytes()
	for i, c := range raw {
		if c == '\n' && (i == 0 || raw[i-1] != '\r') {
			t.Fatalf("bare LF at offset %d in:\n%s", i, raw)
		}
		if c == '\r' && (i+1 >= len(raw) || raw[i+1] != '\n') {
			t.Fatalf("bare CR at offset %d", i)
		}
	}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 998 {
			t.Fatalf("line of %d octets", len(line))
		}
	}
	return raw
}

func parse(t *testing.T, raw []byte) *mail.Message {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse rendered message: %v\n%s", err, raw)
	}
	return msg
}

func decodeQP(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(quotedprintable.NewReader(r))
	if err != nil {
		t.Fatalf("decode quoted-printable: %v", err)
	}
	return string(b)
}

func TestWriteToTextOnlyHeaders(t *testing.T) {
	m := baseMessage()
	m.ReplyTo = "Support <support@example.com>"
	m.Text = "Line one\nLine two with a very long tail that goes on and on and on past the seventy-six character limit of quoted-printable\n"
	m.Headers = []sdk.Header{
		{Name: "List-Unsubscribe", Value: "<https://example.com/u/7/42>, <mailto:unsub@example.com?subject=7-42>"},
		{Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"},
		{Name: "Precedence", Value: "bulk"},
	}
	raw := render(t, m)
	msg := parse(t, raw)
	h := msg.Header

	date, err := h.Date()
	if err != nil || !date.Equal(m.Date) {
		t.Errorf("Date = %v (%v), want %v", date, err, m.Date)
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "Ops Team" || from[0].Address != "ops@example.com" {
		t.Errorf("From = %v (%v)", from, err)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Name != "Alice Example" || to[0].Address != "alice@example.org" {
		t.Errorf("To = %v (%v)", to, err)
	}
	rt, err := h.AddressList("Reply-To")
	if err != nil || len(rt) != 1 || rt[0].Address != "support@example.com" {
		t.Errorf("Reply-To = %v (%v)", rt, err)
	}
	if got := h.Get("Subject"); got != "Hello there" {
		t.Errorf("Subject = %q", got)
	}
	if got := h.Get("Message-ID"); got != "<7.42@mail.example.com>" {
		t.Errorf("Message-ID = %q", got)
	}
	if got := h.Get("MIME-Version"); got != "1.0" {
		t.Errorf("MIME-Version = %q", got)
	}
	for _, x := range m.Headers {
		if got := h.Get(x.Name); got != x.Value {
			t.Errorf("%s = %q, want %q", x.Name, got, x.Value)
		}
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "text/plain" || params["charset"] != "utf-8" {
		t.Errorf("Content-Type = %q", h.Get("Content-Type"))
	}
	if got := h.Get("Content-Transfer-Encoding"); got != "quoted-printable" {
		t.Errorf("Content-Transfer-Encoding = %q", got)
	}
	body := decodeQP(t, msg.Body)
	want := strings.ReplaceAll(m.Text, "\n", "\r\n")
	if body != want {
		t.Errorf("body = %q, want %q", body, want)
	}

	// The fixed headers come first and in the documented order, then the
	// extra headers in the caller's order.
	order := []string{"Date:", "From:", "To:", "Reply-To:", "Subject:", "Message-ID:", "MIME-Version:",
		"List-Unsubscribe:", "List-Unsubscribe-Post:", "Precedence:", "Content-Type:"}
	pos := -1
	for _, name := range order {
		i := bytes.Index(raw, []byte("\r\n"+name))
		if name == "Date:" && bytes.HasPrefix(raw, []byte(name)) {
			i = 0
		}
		if i <= pos {
			t.Fatalf("header %s at %d, not after previous at %d:\n%s", name, i, pos, raw)
		}
		pos = i
	}
}

func TestWriteToHTMLOnly(t *testing.T) {
	m := baseMessage()
	m.HTML = "<p>Grüße, <b>Alice</b></p>"
	msg := parse(t, render(t, m))
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "text/html" || params["charset"] != "utf-8" {
		t.Fatalf("Content-Type = %q", msg.Header.Get("Content-Type"))
	}
	if got := decodeQP(t, msg.Body); got != m.HTML {
		t.Errorf("html body = %q, want %q", got, m.HTML)
	}
}

func TestWriteToAlternative(t *testing.T) {
	m := baseMessage()
	m.Text = "Plain ünïcode text\nsecond line"
	m.HTML = "<html><body><p>HTML ünïcode</p>\n<p>" + strings.Repeat("x", 200) + "</p></body></html>"
	raw := render(t, m)
	msg := parse(t, raw)
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type = %q (%v)", msg.Header.Get("Content-Type"), err)
	}
	boundary := params["boundary"]
	if len(boundary) < 20 {
		t.Fatalf("boundary %q is too short to be safe", boundary)
	}
	if bytes.Contains([]byte(m.Text+m.HTML), []byte(boundary)) {
		t.Fatalf("boundary occurs in the content")
	}
	mr := multipart.NewReader(msg.Body, boundary)
	want := []struct{ ctype, body string }{
		{"text/plain", strings.ReplaceAll(m.Text, "\n", "\r\n")},
		{"text/html", strings.ReplaceAll(m.HTML, "\n", "\r\n")},
	}
	for i, w := range want {
		// NextPart decodes quoted-printable transparently.
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		pt, pp, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil || pt != w.ctype || pp["charset"] != "utf-8" {
			t.Errorf("part %d Content-Type = %q", i, p.Header.Get("Content-Type"))
		}
		got, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("read part %d: %v", i, err)
		}
		if string(got) != w.body {
			t.Errorf("part %d body = %q, want %q", i, got, w.body)
		}
	}
	if _, err := mr.NextPart(); !errors.Is(err, io.EOF) {
		t.Errorf("expected exactly two parts, got err %v", err)
	}
	// Two renders use different boundaries.
	_, p2, _ := mime.ParseMediaType(parse(t, render(t, m)).Header.Get("Content-Type"))
	if p2["boundary"] == boundary {
		t.Errorf("boundary is not random: %q twice", boundary)
	}
}

// TestWriteToAlternativeLayout checks that the multipart body is laid out
// byte for byte as mime/multipart's Writer lays it out, with a boundary of
// its form (60 lower-case hex digits).
func TestWriteToAlternativeLayout(t *testing.T) {
	m := baseMessage()
	m.Text = "Plain ünïcode text\r\nsecond line = with an equals sign\n" + strings.Repeat("long ", 40)
	m.HTML = "<p>HTML ünïcode</p>\n<p>" + strings.Repeat("x", 200) + "</p>\n"
	msg := parse(t, render(t, m))
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	boundary := params["boundary"]
	if len(boundary) != 60 || strings.Trim(boundary, "0123456789abcdef") != "" {
		t.Fatalf("boundary %q: want 60 lower-case hex digits, as mime/multipart makes", boundary)
	}
	got, err := io.ReadAll(msg.Body)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	mw := multipart.NewWriter(&want)
	if err := mw.SetBoundary(boundary); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ ctype, content string }{
		{"text/plain; charset=utf-8", m.Text},
		{"text/html; charset=utf-8", m.HTML},
	} {
		pw, err := mw.CreatePart(map[string][]string{"Content-Type": {p.ctype}, "Content-Transfer-Encoding": {"quoted-printable"}})
		if err != nil {
			t.Fatal(err)
		}
		qw := quotedprintable.NewWriter(pw)
		io.WriteString(qw, strings.ReplaceAll(strings.ReplaceAll(p.content, "\r\n", "\n"), "\r", "\n"))
		qw.Close()
	}
	mw.Close()
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("body:\n%q\nwant (mime/multipart):\n%q", got, want.Bytes())
	}
}

func TestWriteToNonASCIISubjectAndNames(t *testing.T) {
	m := baseMessage()
	m.Subject = "Grüße aus Köln — 日本語のテキスト, and a long enough tail to need several encoded words"
	m.From = "Jürgen Müller <j@example.com>"
	m.To = `"Doe, Jane" <jane@example.org>`
	m.Text = "hi"
	raw := render(t, m)
	if bytes.Contains(raw[:bytes.Index(raw, []byte("\r\n\r\n"))], []byte("ü")) {
		t.Errorf("raw 8-bit text in the header section:\n%s", raw)
	}
	msg := parse(t, raw)
	dec := new(mime.WordDecoder)
	subj, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subj != m.Subject {
		t.Errorf("Subject round-trip = %q (%v), want %q", subj, err, m.Subject)
	}
	from, err := msg.Header.AddressList("From")
	if err != nil || from[0].Name != "Jürgen Müller" || from[0].Address != "j@example.com" {
		t.Errorf("From = %v (%v)", from, err)
	}
	to, err := msg.Header.AddressList("To")
	if err != nil || to[0].Name != "Doe, Jane" || to[0].Address != "jane@example.org" {
		t.Errorf("To = %v (%v)", to, err)
	}
}

// An ASCII subject with "=?" in it reads back as written: left bare, a
// reader would decode it as an encoded word.
func TestWriteToSubjectWithEncodedWordSyntax(t *testing.T) {
	m := baseMessage()
	m.Subject = "Your code =?utf-8?q?SAVE20?= expires today"
	msg := parse(t, render(t, m))
	got, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || got != m.Subject {
		t.Errorf("a reader shows Subject %q (%v), want %q", got, err, m.Subject)
	}
}

// A non-ASCII value of an extra header is RFC 2047-encoded (the server may
// not offer SMTPUTF8) and reads back as written; ASCII values stay as
// they are.
func TestWriteToEncodesNonASCIIExtraHeaders(t *testing.T) {
	m := baseMessage()
	m.Headers = []sdk.Header{{Name: "X-Campaign", Value: "Été 2024"}, {Name: "X-Plain", Value: "spring-2024"}}
	raw := render(t, m)
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	for i, c := range head {
		if c >= 0x80 {
			t.Fatalf("8-bit octet 0x%02x in the header section at %d:\n%s", c, i, head)
		}
	}
	msg := parse(t, raw)
	if got, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("X-Campaign")); err != nil || got != "Été 2024" {
		t.Errorf("X-Campaign reads %q (%v)", got, err)
	}
	if got := msg.Header.Get("X-Plain"); got != "spring-2024" {
		t.Errorf("X-Plain = %q", got)
	}
}

func TestWriteToFoldsLongHeaders(t *testing.T) {
	m := baseMessage()
	m.Subject = strings.Repeat("word ", 60) + "end"
	m.Text = "x"
	long := "<https://example.com/unsubscribe/" + strings.Repeat("a", 100) + ">, <mailto:u@example.com>"
	m.Headers = []sdk.Header{{Name: "List-Unsubscribe", Value: long}}
	raw := render(t, m)
	head := string(raw[:bytes.Index(raw, []byte("\r\n\r\n"))])
	for _, line := range strings.Split(head, "\r\n") {
		if _, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, " ") {
			line = v // the space after the colon is not a folding point
		}
		if len(line) > 78 && strings.Contains(strings.TrimSpace(line), " ") {
			t.Errorf("foldable line of %d chars: %q", len(line), line)
		}
	}
	msg := parse(t, raw)
	if got := msg.Header.Get("Subject"); got != m.Subject {
		t.Errorf("folded Subject unfolds to %q", got)
	}
	if got := msg.Header.Get("List-Unsubscribe"); got != long {
		t.Errorf("folded List-Unsubscribe unfolds to %q", got)
	}
}

func TestWriteToDefaults(t *testing.T) {
	m := baseMessage()
	m.Date = time.Time{}
	m.MessageID = "abc.def@example.com" // brackets added
	msg := parse(t, render(t, m))
	d, err := msg.Header.Date()
	if err != nil || time.Since(d) > time.Minute {
		t.Errorf("zero Date rendered as %v (%v), want now", d, err)
	}
	if got := msg.Header.Get("Message-ID"); got != "<abc.def@example.com>" {
		t.Errorf("Message-ID = %q", got)
	}
	if ct := msg.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("empty body Content-Type = %q", ct)
	}
}

func TestWriteToRejectsInjection(t *testing.T) {
	cases := map[string]func(m *sdk.Message){
		"subject CRLF":       func(m *sdk.Message) { m.Subject = "hi\r\nBcc: victim@example.com" },
		"subject LF":         func(m *sdk.Message) { m.Subject = "hi\nBcc: victim@example.com" },
		"subject CR":         func(m *sdk.Message) { m.Subject = "hi\rBcc: victim@example.com" },
		"subject NUL":        func(m *sdk.Message) { m.Subject = "hi\x00there" },
		"from name":          func(m *sdk.Message) { m.From = "\"Evil\r\nBcc: x@example.com\" <a@example.com>" },
		"to":                 func(m *sdk.Message) { m.To = "a@example.com\r\nBcc: x@example.com" },
		"reply-to":           func(m *sdk.Message) { m.ReplyTo = "a@example.com\nX-Evil: 1" },
		"message-id":         func(m *sdk.Message) { m.MessageID = "<a@b>\r\nX-Evil: 1" },
		"extra value CRLF":   func(m *sdk.Message) { m.Headers = []sdk.Header{{Name: "X-Tag", Value: "a\r\n\r\n<html>evil"}} },
		"extra value NUL":    func(m *sdk.Message) { m.Headers = []sdk.Header{{Name: "X-Tag", Value: "a\x00"}} },
		"extra name colon":   func(m *sdk.Message) { m.Headers = []sdk.Header{{Name: "X-Tag: injected\r\nX", Value: "v"}} },
		"extra name space":   func(m *sdk.Message) { m.Headers = []sdk.Header{{Name: "X Tag", Value: "v"}} },
		"extra name empty":   func(m *sdk.Message) { m.Headers = []sdk.Header{{Name: "", Value: "v"}} },
		"extra From":         func(m *sdk.Message) { m.Headers = []sdk.Header{{Name: "from", Value: "ceo@example.com"}} },
		"extra Content-Type": func(m *sdk.Message) { m.Headers = []sdk.Header{{Name: "Content-Type", Value: "text/html"}} },
		"bad from":           func(m *sdk.Message) { m.From = "not an address" },
		"empty to":           func(m *sdk.Message) { m.To = "" },
		"bad message-id":     func(m *sdk.Message) { m.MessageID = "<no-at-sign>" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			m := baseMessage()
			m.Text = "body"
			mutate(m)
			var buf bytes.Buffer
			n, err := m.WriteTo(&buf)
			if err == nil {
				t.Fatalf("WriteTo accepted it:\n%s", buf.Bytes())
			}
			if n != 0 || buf.Len() != 0 {
				t.Errorf("partial output on error: %d bytes", buf.Len())
			}
		})
	}
}

func TestValidateHeader(t *testing.T) {
	ok := [][2]string{
		{"List-Unsubscribe", "<https://example.com/u>"},
		{"X-Campaign", ""},
		{"Subject", "Grüße\tund mehr"},
	}
	for _, c := range ok {
		if err := sdk.ValidateHeader(c[0], c[1]); err != nil {
			t.Errorf("ValidateHeader(%q, %q) = %v", c[0], c[1], err)
		}
	}
	bad := [][2]string{
		{"X-A", "a\r\nb"}, {"X-A", "a\nb"}, {"X-A", "a\rb"}, {"X-A", "a\x00b"},
		{"", "v"}, {"X A", "v"}, {"X:A", "v"}, {"X-\x7f", "v"}, {"Ü", "v"}, {"X-A\r\n", "v"},
	}
	for _, c := range bad {
		err := sdk.ValidateHeader(c[0], c[1])
		if err == nil {
			t.Errorf("ValidateHeader(%q, %q) accepted", c[0], c[1])
			continue
		}
		if msg := err.Error(); msg != strings.ToLower(msg[:1])+msg[1:] {
			t.Errorf("error not lowercase: %q", msg)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteToPropagatesWriteError(t *testing.T) {
	m := baseMessage()
	m.Text = "x"
	if _, err := m.WriteTo(failWriter{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("WriteTo error = %v, want the writer's error", err)
	}
}
