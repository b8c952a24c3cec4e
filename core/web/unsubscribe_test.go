package web_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/campaignd/campaignd/core"
)

var formHeader = http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}

const oneClick = "List-Unsubscribe=One-Click"

// unsubscribeURL is the List-Unsubscribe URL the engine put on the
// message sent to r, checked to come with List-Unsubscribe-Post.
func (e *env) unsubscribeURL(r *core.Recipient) string {
	e.t.Helper()
	m := e.sender.message(r.ID)
	if m == nil {
		e.t.Fatalf("no message sent to recipient %d", r.ID)
	}
	var url, post string
	for _, h := range m.Headers {
		switch h.Name {
		case "List-Unsubscribe":
			url = strings.Trim(h.Value, "<>")
		case "List-Unsubscribe-Post":
			post = h.Value
		}
	}
	if !strings.HasPrefix(url, e.base+"/unsubscribe/") || post != oneClick {
		e.t.Fatalf("headers %+v", m.Headers)
	}
	return url
}

func TestOneClickUnsubscribe(t *testing.T) {
	e := newEnv(t, options{})
	id, rs := e.sentCampaign(3)
	url := e.unsubscribeURL(rs[0])

	// GET shows a page with the button and changes nothing.
	before := e.snap(id)
	for i := 0; i < 3; i++ { // a mail scanner prefetching
		res := e.do("GET", url, nil, nil)
		if res.status != http.StatusOK || !strings.Contains(string(res.body), `<form method="post">`) ||
			!strings.Contains(string(res.body), `name="List-Unsubscribe" value="One-Click"`) {
			t.Fatalf("GET: %d %s", res.status, res.body)
		}
		if !strings.Contains(res.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Fatalf("GET headers %v", res.header)
		}
	}
	if res := e.do("HEAD", url, nil, nil); res.status != http.StatusOK {
		t.Fatalf("HEAD: %d", res.status)
	}
	e.unchanged(id, before)

	// A POST without the one-click field is not RFC 8058.
	if res := e.do("POST", url, formHeader, []byte("foo=bar")); res.status != http.StatusBadRequest {
		t.Fatalf("POST without field: %d %s", res.status, res.body)
	}
	e.unchanged(id, before)

	// The one-click POST suppresses the address.
	res := e.do("POST", url, formHeader, []byte(oneClick))
	if res.status != http.StatusOK || !strings.Contains(string(res.body), "unsubscribed") {
		t.Fatalf("POST: %d %s", res.status, res.body)
	}
	sup := e.suppressions()
	if len(sup) != 1 || sup[0].Email != rs[0].Email || sup[0].Source != "unsubscribe" {
		t.Fatalf("suppressions %+v", sup)
	}
	if st := e.stats(id); st != before.stats {
		t.Fatalf("unsubscribe changed stats: %+v", st)
	}
	// Again: harmless.
	if res := e.do("POST", url, formHeader, []byte(oneClick)); res.status != http.StatusOK {
		t.Fatalf("second POST: %d %s", res.status, res.body)
	}

	// multipart/form-data, what RFC 8058 says clients SHOULD send.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("List-Unsubscribe", "One-Click")
	_ = mw.Close()
	res = e.do("POST", e.unsubscribeURL(rs[1]), http.Header{"Content-Type": {mw.FormDataContentType()}}, buf.Bytes())
	if res.status != http.StatusOK {
		t.Fatalf("multipart POST: %d %s", res.status, res.body)
	}
	if n := len(e.suppressions()); n != 2 {
		t.Fatalf("%d suppressions, want 2", n)
	}
}

func TestForgedUnsubscribeTokens(t *testing.T) {
	e := newEnv(t, options{})
	id, rs := e.sentCampaign(2)
	url := e.unsubscribeURL(rs[0])
	token := url[strings.LastIndex(url, "/")+1:]
	parts := strings.Split(token, ".")
	sig := []byte(parts[2])
	if sig[0] == 'A' {
		sig[0] = 'B'
	} else {
		sig[0] = 'A'
	}
	forged := map[string]string{
		"one char":        parts[0] + "." + parts[1] + "." + string(sig),
		"other recipient": e.unsub.Token(id, rs[1].ID)[:strings.LastIndex(e.unsub.Token(id, rs[1].ID), ".")] + "." + parts[2],
		"no signature":    parts[0] + "." + parts[1],
		"garbage":         "x",
	}
	before := e.snap(id)
	for name, tok := range forged {
		t.Run(name, func(t *testing.T) {
			u := e.base + "/unsubscribe/" + tok
			if res := e.do("GET", u, nil, nil); res.status != http.StatusNotFound || strings.Contains(string(res.body), "<form") {
				t.Fatalf("GET: %d %s", res.status, res.body)
			}
			if res := e.do("POST", u, formHeader, []byte(oneClick)); res.status != http.StatusNotFound {
				t.Fatalf("POST: %d %s", res.status, res.body)
			}
			e.unchanged(id, before)
		})
	}
	// A genuinely signed token whose recipient is not in its campaign (a
	// recipient deleted and its id reused, say) is refused on POST.
	u := e.base + "/unsubscribe/" + e.unsub.Token(id+1, rs[0].ID)
	if res := e.do("POST", u, formHeader, []byte(oneClick)); res.status != http.StatusNotFound {
		t.Fatalf("mismatched campaign: %d %s", res.status, res.body)
	}
	e.unchanged(id, before)
}

func TestUnsubscribeDisabledAndBodyLimit(t *testing.T) {
	e := newEnv(t, options{noUnsub: true})
	id, rs := e.sentCampaign(1)
	before := e.snap(id)
	u := e.base + "/unsubscribe/" + e.unsub.Token(id, rs[0].ID)
	if res := e.do("POST", u, formHeader, []byte(oneClick)); res.status != http.StatusNotFound {
		t.Fatalf("disabled: %d %s", res.status, res.body)
	}

	e2 := newEnv(t, options{})
	id2, rs2 := e2.sentCampaign(1)
	before2 := e2.snap(id2)
	big := []byte(oneClick + "&pad=" + strings.Repeat("x", 5000))
	if res := e2.do("POST", e2.unsubscribeURL(rs2[0]), formHeader, big); res.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("big body: %d %s", res.status, res.body)
	}
	e2.unchanged(id2, before2)
	e.unchanged(id, before)
}
