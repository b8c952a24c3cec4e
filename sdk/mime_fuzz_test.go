package sdk_test

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/sdk"
)

// FuzzWriteTo renders arbitrary header and body values. WriteTo either
// refuses the message (writing nothing) or produces one that:
//   - has CRLF line endings only (no bare CR or LF anywhere) and no line
//     over 998 octets (RFC 5322 2.1.1);
//   - net/mail reads, with exactly the expected header fields, each once:
//     nothing injected, no Cc or Bcc unless it was the extra header asked
//     for;
//   - reads back the same From, To and Reply-To addresses and display
//     names, the same Subject words, Message-ID and extra header value;
//   - has the body structure its parts ask for (text/plain, text/html or
//     multipart/alternative with exactly two parts) and decodes to the
//     same text and HTML.
func FuzzWriteTo(f *testing.F) {
	type seed struct{ from, to, replyTo, subject, msgID, hName, hValue, text, html string }
	for _, s := range []seed{
		{`"Ops" <ops@example.com>`, "Alice <alice@example.org>", "", "Hello", "<1.2@example.com>", "X-Campaign", "spring", "hi", ""},
		{"ops@example.com", "alice@example.org\r\nBcc: evil@example.net", "", "Hello", "", "X-A", "v", "hi", "<p>hi</p>"},
		{"ops@example.com", "alice@example.org", "", "Hello\r\nBcc: evil@example.net", "", "X-A", "v", "hi", ""},
		{"ops@example.com", "alice@example.org", "a@example.com\nX-Evil: 1", "Hello", "", "X-A", "v", "", "<b>x</b>"},
		{"ops@example.com", "alice@example.org", "", "Hello", "<a@b>\r\nX-Evil: 1", "X-A", "v", "x", ""},
		{"ops@example.com", "alice@example.org", "", "Hello", "", "Bcc", "evil@example.net", "x", ""},
		{"ops@example.com", "alice@example.org", "", "Hello", "", "X-Tag: injected\r\nX", "v", "x", ""},
		{"ops@example.com", "alice@example.org", "", "Hello", "", "from", "ceo@example.com", "x", ""},
		{"ops@example.com", "alice@example.org", "", "Hello", "", "X(a)", "v", "x", ""},
		{`"Evil\" <x@y>" <ops@example.com>`, `"a\\b" <alice@example.org>`, "a@example.com, b@example.com", "Grüße =?utf-8?q?x?=", "", "X-A", "Grüße\tund", "x\r\ny\rz\n", "<p>\r\x80\n</p>"},
		{"Jürgen \\ Größe <j@example.com>", "=?utf-8?q?Bcc:_x=40y?= <alice@example.org>", "", strings.Repeat("word ", 60), "x@y", "List-Unsubscribe", "<https://u.example/" + strings.Repeat("a", 100) + ">", "", ""},
		{"ops@example.com", "alice@example.org", "", strings.Repeat("x", 1200), "", "X-A", "y", "x", ""},
		{"ops@example.com", "alice@example.org", "", "Hi", "", "X-A", strings.Repeat("y", 1200), "x", ""},
		{`"` + strings.Repeat("N", 1200) + `" <ops@example.com>`, "Zoë" + strings.Repeat("é", 600) + " <alice@example.org>", strings.Repeat("R", 1000) + " <r@example.com>", "Hi", "", "X-A", "v", "x", ""},
		{"ops@example.com", `"a b"@example.org`, "", "", "", "X-A", "", strings.Repeat("line\n", 10) + "\r\n.\r\n", "--boundary\r\n"},
	} {
		f.Add(s.from, s.to, s.replyTo, s.subject, s.msgID, s.hName, s.hValue, s.text, s.html)
	}
	f.Fuzz(func(t *testing.T, from, to, replyTo, subject, msgID, hName, hValue, text, html string) {
		m := &sdk.Message{CampaignID: 1, RecipientID: 2, MessageID: msgID, From: from, To: to, ReplyTo: replyTo,
			Subject: subject, Text: text, HTML: html, Date: time.Unix(1700000000, 0).UTC()}
		if hName != "" || hValue != "" {
			m.Headers = []sdk.Header{{Name: hName, Value: hValue}}
		}
		var buf bytes.Buffer
		n, err := m.WriteTo(&buf)
		if err != nil {
			if n != 0 || buf.Len() != 0 {
				t.Fatalf("WriteTo failed (%v) but wrote %d bytes", err, buf.Len())
			}
			return
		}
		raw := buf.Bytes()
		if n != int64(len(raw)) {
			t.Fatalf("WriteTo returned %d, wrote %d", n, len(raw))
		}
		for i, c := range raw {
			if c == '\n' && (i == 0 || raw[i-1] != '\r') || c == '\r' && (i+1 >= len(raw) || raw[i+1] != '\n') {
				t.Fatalf("bare CR or LF at offset %d:\n%q", i, raw)
			}
		}
		for _, line := range strings.Split(string(raw), "\r\n") {
			if len(line) > 998 {
				t.Fatalf("line of %d octets: %.80q...", len(line), line)
			}
		}

		pm, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("net/mail cannot read the message: %v\n%q", err, raw)
		}
		want := []string{"Date", "From", "To", "Subject", "Mime-Version", "Content-Type"}
		if strings.TrimSpace(replyTo) != "" {
			want = append(want, "Reply-To")
		}
		if msgID != "" {
			want = append(want, "Message-Id")
		}
		if len(m.Headers) == 1 {
			want = append(want, textproto.CanonicalMIMEHeaderKey(hName))
		}
		multi := text != "" && html != ""
		if !multi {
			want = append(want, "Content-Transfer-Encoding")
		}
		var got []string
		fields := 0
		for k, vs := range pm.Header {
			got = append(got, k)
			fields += len(vs)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) || fields != len(want) {
			t.Fatalf("header fields %v (%d), want %v\n%q", got, fields, want, raw)
		}

		sameAddress(t, "From", pm.Header.Get("From"), from)
		sameAddress(t, "To", pm.Header.Get("To"), to)
		if strings.TrimSpace(replyTo) != "" {
			gotList, err := mail.ParseAddressList(pm.Header.Get("Reply-To"))
			if err != nil {
				t.Fatalf("Reply-To %q does not parse: %v", pm.Header.Get("Reply-To"), err)
			}
			wantList, _ := mail.ParseAddressList(replyTo)
			if len(gotList) != len(wantList) {
				t.Fatalf("Reply-To has %d addresses, want %d", len(gotList), len(wantList))
			}
			for i := range gotList {
				if *gotList[i] != *wantList[i] {
					t.Fatalf("Reply-To %d = %+v, want %+v", i, *gotList[i], *wantList[i])
				}
			}
		}
		dec, err := new(mime.WordDecoder).DecodeHeader(pm.Header.Get("Subject"))
		if err != nil {
			t.Fatalf("Subject %q does not decode: %v", pm.Header.Get("Subject"), err)
		}
		if !slices.Equal(strings.Fields(dec), strings.Fields(subject)) {
			t.Fatalf("Subject reads back as %q, want %q", dec, subject)
		}
		if msgID != "" {
			if id := pm.Header.Get("Message-Id"); strings.Trim(id, "<>") != strings.Trim(msgID, "<>") {
				t.Fatalf("Message-ID %q, want %q", id, msgID)
			}
		}
		if len(m.Headers) == 1 {
			// A non-ASCII value is encoded; an ASCII one is written as it
			// is, so one that looks like an encoded word stays undecoded.
			v := pm.Header.Get(hName)
			if !strings.Contains(hValue, "=?") || !isASCII(hValue) {
				if v, err = new(mime.WordDecoder).DecodeHeader(v); err != nil {
					t.Fatalf("header %s %q does not decode: %v", hName, pm.Header.Get(hName), err)
				}
			}
			if !slices.Equal(strings.Fields(v), strings.Fields(hValue)) {
				t.Fatalf("header %s reads back as %q, want %q", hName, v, hValue)
			}
		}

		// The body.
		mt, params, err := mime.ParseMediaType(pm.Header.Get("Content-Type"))
		if err != nil {
			t.Fatalf("Content-Type %q: %v", pm.Header.Get("Content-Type"), err)
		}
		switch {
		case multi:
			if mt != "multipart/alternative" {
				t.Fatalf("Content-Type %q, want multipart/alternative", mt)
			}
			mr := multipart.NewReader(pm.Body, params["boundary"])
			var parts []string
			for {
				p, err := mr.NextRawPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("multipart: %v", err)
				}
				parts = append(parts, p.Header.Get("Content-Type")+"|"+decodeQP(t, p))
			}
			wantParts := []string{"text/plain; charset=utf-8|" + text, "text/html; charset=utf-8|" + html}
			if len(parts) != 2 {
				t.Fatalf("%d MIME parts, want 2", len(parts))
			}
			for i := range parts {
				if lf(parts[i]) != lf(wantParts[i]) {
					t.Fatalf("part %d decodes to %q, want %q", i, parts[i], wantParts[i])
				}
			}
		default:
			wantType, body := "text/plain", text
			if html != "" {
				wantType, body = "text/html", html
			}
			if mt != wantType || params["charset"] != "utf-8" {
				t.Fatalf("Content-Type %q, want %s; charset=utf-8", pm.Header.Get("Content-Type"), wantType)
			}
			if got := decodeQP(t, pm.Body); lf(got) != lf(body) {
				t.Fatalf("body decodes to %q, want %q", got, body)
			}
		}
	})
}

// sameAddress checks that a rendered address field reads back as the
// address the message was given.
func sameAddress(t *testing.T, field, rendered, given string) {
	t.Helper()
	got, err := mail.ParseAddress(rendered)
	if err != nil {
		t.Fatalf("%s %q (given %q) does not parse: %v", field, rendered, given, err)
	}
	want, err := mail.ParseAddress(given)
	if err != nil {
		t.Fatalf("%s %q was accepted but does not parse: %v", field, given, err)
	}
	if *got != *want {
		t.Fatalf("%s reads back as %+v, want %+v", field, *got, *want)
	}
}

// lf normalises line endings: quoted-printable text turns every line break
// into CRLF.
func lf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
