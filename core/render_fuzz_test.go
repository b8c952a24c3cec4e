package core_test

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/sdk"
)

// FuzzRender puts hostile recipient data (CR, LF, NUL, markup, invalid
// UTF-8, header look-alikes) through a campaign whose templates use every
// field, then through sdk.Message.WriteTo. Invariants:
//   - Render either fails with EINVALID (the recipient then fails with
//     class template) or returns a message; clean data always renders;
//   - the Subject has no CR, LF or NUL;
//   - the HTML body has exactly the <script elements of the template:
//     data never adds one;
//   - WriteTo accepts every rendered message, and net/mail reads back
//     exactly the expected header fields (one To, no Cc or Bcc, nothing
//     injected), the same To address, display name, Subject and
//     Message-ID, and a multipart/alternative body of exactly two parts
//     whose decoded content is the rendered text and HTML.

const (
	fuzzSubjectTpl = "Hi {{.Name}} from {{.Attr.city}} <{{.Email}}> / {{.Campaign.Name}}"
	fuzzTextTpl    = "Dear {{.Name}} <{{.Email}}>,\n{{.Campaign.Name}} in {{.Attr.city}}.\n" +
		"{{range $k, $v := .Attr}}{{$k}}={{$v}}\n{{end}}Unsubscribe: {{.UnsubscribeURL}}\n"
	fuzzHTMLTpl = `<html><head><title>{{.Campaign.Name}}</title></head><body>` +
		`<p class="{{.Attr.city}}">Hello {{.Name}} &lt;<a href="mailto:{{.Email}}">{{.Email}}</a>&gt;</p>` +
		`{{range $k, $v := .Attr}}<i title="{{$k}}">{{$v}}</i>{{end}}` +
		`<a href="{{.UnsubscribeURL}}">unsubscribe</a>` +
		`<script>var who = {{.Name}};</script></body></html>`
)

func FuzzRender(f *testing.F) {
	type seed struct{ name, email, city, key, val, unsub, campaign string }
	for _, s := range []seed{
		{"Ann", "ann@example.com", "Oslo", "plan", "gold", "https://mail.example.com/unsubscribe/1.2.x", "Spring"},
		{"Ann\r\nBcc: evil@example.net", "ann@example.com", "Oslo", "k", "v", "", "Spring"},
		{"Ann", "ann@example.com", "Oslo\r\nBcc: evil@example.net", "k", "v", "", "Spring"},
		{"<script>alert(1)</script>", "ann@example.com", "</script><script>alert(2)</script>", "<script>", "<SCRIPT SRC=//x>", "javascript:alert(3)", "<script>c</script>"},
		{"\x00", "ann@example.com", "Os\x00lo", "nul\x00", "\x00", "", "Spring"},
		{"\xff\xfe", "ann@example.com", "\xc3\x28", "\xff", "\xed\xa0\x80", "", "Spring"},
		{`"Ann" <evil@example.net>, Bob`, "ann@example.com", "Oslo", "to", "evil@example.net", "", "Spring"},
		{"=?utf-8?q?Bcc:_evil=40example.net?=", "ann@example.com", "=?utf-8?b?DQpCY2M6IGV2aWw=?=", "k", "v", "", "Spring"},
		{"Jürgen Größe", "jürgen@bücher.example", "Zürich", "ключ", "значение", "https://x.example/u?a=1&b=<2>", "Frühling"},
		{"Ann", "ann@example.com", "", "k", "v", "https://u.example/\r\nX-Evil: 1", "Spring"},
		{strings.Repeat("very long name ", 20), "ann@example.com", strings.Repeat("x", 200), "k", "v", "", "Spring"},
		{"Ann", `"a b"@example.com`, "Oslo", "k", "v", "", "Spring"},
		{"Ann", "ann@example.com", "Oslo", "k", "v", "", "Spr\r\ning"},
		{" \t", "ann@example.com", "\t", "", "", "https://u.example/ spaced", "Spring"},
		{strings.Repeat("N", 1200), "ann@example.com", "Oslo", "k", "v", "", "Spring"},
		{"Ann", strings.Repeat("a", 1100) + "@example.com", "Oslo", "k", "v", "", "Spring"},
	} {
		f.Add(s.name, s.email, s.city, s.key, s.val, s.unsub, s.campaign)
	}
	f.Fuzz(func(t *testing.T, name, email, city, key, val, unsub, campaignName string) {
		spec := core.CampaignSpec{Name: campaignName, Sender: "outbox", From: "News <news@example.org>",
			ReplyTo: "help@example.org", Subject: fuzzSubjectTpl, Text: fuzzTextTpl, HTML: fuzzHTMLTpl,
			Headers: []sdk.Header{{Name: "X-Campaign", Value: "spring"}}}
		if spec.Validate(5) != nil {
			// Campaign fields are validated at create; only valid ones reach Render.
			spec.Name = "Spring"
			if err := spec.Validate(5); err != nil {
				t.Fatal(err)
			}
		}
		c := &core.Campaign{ID: 7, Name: spec.Name, Sender: spec.Sender, From: spec.From, ReplyTo: spec.ReplyTo,
			Subject: spec.Subject, Text: spec.Text, HTML: spec.HTML, Headers: spec.Headers}
		// Stored addresses are always normalised; names and attributes are
		// taken raw here (defence in depth: Render must not trust them).
		addr, _, err := core.NormalizeAddress(email)
		if err != nil {
			addr = "ann@example.com"
		}
		attrs := map[string]string{}
		if city != "" {
			attrs["city"] = city
		}
		if key != "" && key != "city" {
			attrs[key] = val
		}
		rc := &core.Recipient{ID: 42, CampaignID: 7, Email: addr, Name: name, Attrs: attrs}
		var unsubFn func(*core.Campaign, *core.Recipient) string
		if unsub != "" {
			unsubFn = func(*core.Campaign, *core.Recipient) string { return unsub }
		}
		r, err := core.NewRenderer(c, "", unsubFn)
		if err != nil {
			t.Fatalf("NewRenderer: %v", err)
		}
		m, err := r.Render(rc, time.Unix(1700000000, 0))
		clean := !strings.ContainsAny(name+city+c.Name+addr, "\r\n\x00") &&
			!strings.ContainsAny(unsub, "\r\n\x00<>")
		if err != nil {
			if core.ErrorCode(err) != core.EINVALID {
				t.Fatalf("Render failed with %s, want EINVALID (class template): %v", core.ErrorCode(err), err)
			}
			if clean {
				t.Fatalf("Render refused clean data: %v", err)
			}
			return
		}
		// A missing attribute renders empty (activate and execute refuse
		// such recipients unless the operator allows it), never as text
		// of the template engine's own.
		if strings.Contains(m.Subject+m.Text+m.HTML, "<no value>") {
			t.Fatalf("a missing attribute rendered as <no value>: %q", m.Subject)
		}
		if strings.ContainsAny(m.Subject, "\r\n\x00") {
			t.Fatalf("subject has CR, LF or NUL: %q", m.Subject)
		}
		if got, want := strings.Count(strings.ToLower(m.HTML), "<script"), strings.Count(strings.ToLower(fuzzHTMLTpl), "<script"); got != want {
			t.Fatalf("HTML has %d <script, the template %d: data was not escaped\n%s", got, want, m.HTML)
		}

		var buf bytes.Buffer
		if _, err := m.WriteTo(&buf); err != nil {
			t.Fatalf("WriteTo refused a rendered message: %v\nTo %q Subject %q", err, m.To, m.Subject)
		}
		wantKeys := []string{"Date", "From", "To", "Reply-To", "Subject", "Message-Id", "Mime-Version",
			"X-Campaign", "Precedence", "Content-Type"}
		if unsub != "" {
			wantKeys = append(wantKeys, "List-Unsubscribe", "List-Unsubscribe-Post")
		}
		pm := checkParsedHeaders(t, buf.Bytes(), wantKeys)

		gotTo, err := mail.ParseAddress(pm.Header.Get("To"))
		if err != nil {
			t.Fatalf("To %q does not parse: %v", pm.Header.Get("To"), err)
		}
		wantAddr, err := mail.ParseAddress(addr)
		if err != nil {
			t.Fatalf("stored address %q does not parse: %v", addr, err)
		}
		if gotTo.Address != wantAddr.Address {
			t.Fatalf("To address %q, want %q", gotTo.Address, wantAddr.Address)
		}
		if utf8.ValidString(name) && gotTo.Name != strings.TrimSpace(name) && gotTo.Name != name {
			t.Fatalf("To name %q, want %q", gotTo.Name, name)
		}
		if pm.Header.Get("Message-Id") != m.MessageID || m.MessageID != "<c7.r42@example.org>" {
			t.Fatalf("Message-ID %q (message %q)", pm.Header.Get("Message-Id"), m.MessageID)
		}
		checkSubject(t, pm.Header.Get("Subject"), m.Subject)

		// The body: exactly the two alternatives, decoded intact.
		mt, params, err := mime.ParseMediaType(pm.Header.Get("Content-Type"))
		if err != nil || mt != "multipart/alternative" {
			t.Fatalf("Content-Type %q: %v", pm.Header.Get("Content-Type"), err)
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
			if p.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
				t.Fatalf("part encoding %q", p.Header.Get("Content-Transfer-Encoding"))
			}
			b, err := io.ReadAll(quotedprintable.NewReader(p))
			if err != nil {
				t.Fatalf("part %d: quoted-printable: %v", len(parts), err)
			}
			parts = append(parts, p.Header.Get("Content-Type")+"\x00"+string(b))
		}
		want := []string{"text/plain; charset=utf-8\x00" + m.Text, "text/html; charset=utf-8\x00" + m.HTML}
		if len(parts) != 2 {
			t.Fatalf("%d MIME parts, want 2", len(parts))
		}
		for i := range parts {
			if eol(parts[i]) != eol(want[i]) {
				t.Fatalf("part %d decodes to\n%q\nwant\n%q", i, parts[i], want[i])
			}
		}
	})
}

// eol normalises line endings: quoted-printable text turns every line
// break into CRLF.
func eol(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// checkParsedHeaders parses a WriteTo output with net/mail and checks that
// its header fields are exactly wantKeys, each once.
func checkParsedHeaders(t *testing.T, raw []byte, wantKeys []string) *mail.Message {
	t.Helper()
	pm, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("net/mail cannot read the message: %v\n%q", err, raw)
	}
	var got []string
	n := 0
	for k, vs := range pm.Header {
		got = append(got, k)
		n += len(vs)
		if len(vs) != 1 {
			t.Fatalf("header %s appears %d times: %q\n%q", k, len(vs), vs, raw)
		}
	}
	slices.Sort(got)
	want := slices.Clone(wantKeys)
	slices.Sort(want)
	if !slices.Equal(got, want) || n != len(wantKeys) {
		t.Fatalf("header fields %v, want %v\n%q", got, want, raw)
	}
	for _, k := range []string{"Bcc", "Cc"} {
		if _, ok := pm.Header[k]; ok {
			t.Fatalf("a %s header was injected:\n%q", k, raw)
		}
	}
	return pm
}

// checkSubject decodes a Subject field and compares its words with want:
// folding may change the whitespace between words, never the words.
func checkSubject(t *testing.T, field, want string) {
	t.Helper()
	if strings.Contains(want, "=?") {
		return // an encoded-word look-alike in the text: readers decode it, by design of RFC 2047
	}
	got, err := new(mime.WordDecoder).DecodeHeader(field)
	if err != nil {
		t.Fatalf("Subject %q does not decode: %v", field, err)
	}
	if !slices.Equal(strings.Fields(got), strings.Fields(want)) {
		t.Fatalf("Subject reads back as %q, want %q (field %q)", got, want, field)
	}
}
