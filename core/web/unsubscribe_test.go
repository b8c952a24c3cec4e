package web_test

import (
	"bytes"
	"errors"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/web"
)

var formHeader = http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}

const oneClick = "List-Unsubscribe=One-Click"

// multipartOneClick is a multipart/form-data body with the given fields,
// and its content type.
func multipartOneClick(t *testing.T, fields ...string) ([]byte, http.Header) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		if err := mw.WriteField(fields[i], fields[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), http.Header{"Content-Type": {mw.FormDataContentType()}}
}

// expectPage checks an HTML answer: status, the page headers, and text
// in the body.
func expectPage(t *testing.T, what string, res response, status int, text string) {
	t.Helper()
	if res.status != status || res.header.Get("Content-Type") != "text/html; charset=utf-8" ||
		!strings.Contains(string(res.body), text) {
		t.Fatalf("%s: %d (%s), want %d with %q: %s", what, res.status, res.header.Get("Content-Type"), status, text, res.body)
	}
	if !strings.Contains(res.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		res.header.Get("X-Frame-Options") != "DENY" || res.header.Get("X-Robots-Tag") != "noindex, nofollow" {
		t.Fatalf("%s: page headers %v", what, res.header)
	}
}

func TestOneClickUnsubscribe(t *testing.T) {
	e := newEnv(t, options{})
	rs := e.recipients(3)
	token := e.unsub.Token(7, rs[0].ID)
	url := "/unsubscribe/" + token

	// GET shows a page with the button and calls nothing.
	for i := 0; i < 3; i++ { // a mail scanner prefetching
		res := e.do("GET", url, nil, nil)
		expectPage(t, "GET", res, http.StatusOK, `<form method="post">`)
		if !strings.Contains(string(res.body), `name="List-Unsubscribe" value="One-Click"`) || strings.Contains(string(res.body), "<script") {
			t.Fatalf("GET: %s", res.body)
		}
	}
	if res := e.do("HEAD", url, nil, nil); res.status != http.StatusOK || len(res.body) != 0 {
		t.Fatalf("HEAD: %d %q", res.status, res.body)
	}
	e.fake.expectNoCalls(t)

	// A POST without the one-click field is not RFC 8058.
	noField, noFieldType := multipartOneClick(t, "other", "One-Click")
	for name, c := range map[string]struct {
		h    http.Header
		body string
	}{
		"other field":           {formHeader, "foo=bar"},
		"other value":           {formHeader, "List-Unsubscribe=Yes"},
		"empty":                 {formHeader, ""},
		"malformed form":        {formHeader, "List-Unsubscribe=One-Click&%zz"},
		"multipart no field":    {noFieldType, string(noField)},
		"multipart no boundary": {http.Header{"Content-Type": {"multipart/form-data"}}, oneClick},
		"multipart malformed":   {http.Header{"Content-Type": {"multipart/form-data; boundary=x"}}, "--x\r\nno headers"},
		"bad content type":      {http.Header{"Content-Type": {"text/plain; ="}}, oneClick},
	} {
		expectPage(t, name, e.do("POST", url, c.h, []byte(c.body)), http.StatusBadRequest, "could not be understood")
		e.fake.expectNoCalls(t)
	}

	// The one-click POST hands the token to the engine.
	res := e.do("POST", url, formHeader, []byte(oneClick))
	expectPage(t, "POST", res, http.StatusOK, "You are unsubscribed")
	if strings.Contains(string(res.body), "<form") {
		t.Fatalf("POST answer has a form: %s", res.body)
	}
	e.fake.expectCall(t, "Unsubscribe", e.unsub, token)
	// Again: answered the same (the engine makes it harmless).
	expectPage(t, "second POST", e.do("POST", url, formHeader, []byte(oneClick)), http.StatusOK, "You are unsubscribed")
	e.fake.expectCall(t, "Unsubscribe", e.unsub, token)

	// multipart/form-data, what RFC 8058 says clients SHOULD send, and the
	// other spellings clients use.
	token1 := e.unsub.Token(7, rs[1].ID)
	mp, mpType := multipartOneClick(t, "List-Unsubscribe", "One-Click")
	mpMore, mpMoreType := multipartOneClick(t, "a", "b", "List-Unsubscribe", " one-click ")
	for name, c := range map[string]struct {
		h    http.Header
		body []byte
	}{
		"multipart":            {mpType, mp},
		"multipart, more":      {mpMoreType, mpMore},
		"no content type":      {nil, []byte(oneClick)},
		"form, more fields":    {formHeader, []byte("a=b&List-Unsubscribe=one-click&c=d")},
		"form, charset":        {http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=utf-8"}}, []byte(oneClick + "\r\n")},
		"form, repeated field": {formHeader, []byte("List-Unsubscribe=x&List-Unsubscribe=One-Click")},
	} {
		expectPage(t, name, e.do("POST", "/unsubscribe/"+token1, c.h, c.body), http.StatusOK, "You are unsubscribed")
		e.fake.expectCall(t, "Unsubscribe", e.unsub, token1)
	}
}

func TestForgedUnsubscribeTokens(t *testing.T) {
	e := newEnv(t, options{})
	rs := e.recipients(2)
	token := e.unsub.Token(7, rs[0].ID)
	parts := strings.Split(token, ".")
	sig := []byte(parts[2])
	if sig[0] == 'A' {
		sig[0] = 'B'
	} else {
		sig[0] = 'A'
	}
	other := e.unsub.Token(7, rs[1].ID)
	forged := map[string]string{
		"one char":        parts[0] + "." + parts[1] + "." + string(sig),
		"other recipient": other[:strings.LastIndex(other, ".")] + "." + parts[2],
		"no signature":    parts[0] + "." + parts[1],
		"empty signature": parts[0] + "." + parts[1] + ".",
		"leading zero":    "0" + token,
		"padded":          token + "=",
		"other secret":    mustUnsubscriber(t, "another-secret-0123456789").Token(7, rs[0].ID),
		"garbage":         "x",
	}
	for name, tok := range forged {
		t.Run(name, func(t *testing.T) {
			u := "/unsubscribe/" + tok
			res := e.do("GET", u, nil, nil)
			expectPage(t, "GET", res, http.StatusNotFound, "not valid")
			if strings.Contains(string(res.body), "<form") {
				t.Fatalf("GET: %s", res.body)
			}
			expectPage(t, "POST", e.do("POST", u, formHeader, []byte(oneClick)), http.StatusNotFound, "not valid")
			e.fake.expectNoCalls(t)
		})
	}

	// A genuinely signed token the engine refuses: its recipient is not
	// in its campaign (a recipient deleted and its id reused, say), or no
	// longer exists. The page only checks the signature.
	for name, tok := range map[string]string{
		"mismatched campaign": e.unsub.Token(8, rs[0].ID),
		"deleted recipient":   e.unsub.Token(7, 99),
	} {
		u := "/unsubscribe/" + tok
		expectPage(t, name+" GET", e.do("GET", u, nil, nil), http.StatusOK, "<form")
		e.fake.expectNoCalls(t)
		expectPage(t, name+" POST", e.do("POST", u, formHeader, []byte(oneClick)), http.StatusNotFound, "not valid")
		e.fake.expectCall(t, "Unsubscribe", e.unsub, tok)
	}

	// Other engine failures say so without detail.
	for _, c := range []struct {
		err    error
		status int
	}{
		{errors.New("sqlite: disk I/O error"), http.StatusInternalServerError},
		{core.Errorf(core.EUNAVAILABLE, "the database is read-only"), http.StatusServiceUnavailable},
	} {
		e.fake.set(func(f *fakeBackend) { f.err = c.err })
		res := e.do("POST", "/unsubscribe/"+token, formHeader, []byte(oneClick))
		expectPage(t, c.err.Error(), res, c.status, "Something went wrong")
		if strings.Contains(string(res.body), "sqlite") || strings.Contains(string(res.body), "read-only") {
			t.Fatalf("detail shown: %s", res.body)
		}
		e.fake.expectCall(t, "Unsubscribe", e.unsub, token)
	}
}

func TestUnsubscribeDisabledAndBodyLimit(t *testing.T) {
	e := newEnv(t, options{noUnsub: true})
	u := "/unsubscribe/" + e.unsub.Token(7, 11)
	for _, m := range []string{"GET", "POST"} {
		if res := e.do(m, u, formHeader, []byte(oneClick)); res.status != http.StatusNotFound || res.errorCode(t) != core.ENOTFOUND {
			t.Fatalf("disabled %s: %d %s", m, res.status, res.body)
		}
	}
	e.fake.expectNoCalls(t)

	e2 := newEnv(t, options{})
	rs := e2.recipients(1)
	u = "/unsubscribe/" + e2.unsub.Token(7, rs[0].ID)
	pad := func(n int) []byte {
		return []byte(oneClick + "&pad=" + strings.Repeat("x", n-len(oneClick)-len("&pad=")))
	}
	big := pad(int(web.MaxUnsubscribeBodyBytes) + 1)
	e2.both("POST", u, formHeader, big, func(what string, res response) {
		expectPage(t, what, res, http.StatusRequestEntityTooLarge, "too large")
		e2.fake.expectNoCalls(t)
	})
	// A body of exactly the limit is read.
	expectPage(t, "at the limit", e2.do("POST", u, formHeader, pad(int(web.MaxUnsubscribeBodyBytes))), http.StatusOK, "You are unsubscribed")
	e2.fake.expectCall(t, "Unsubscribe", e2.unsub, e2.unsub.Token(7, rs[0].ID))
}

func mustUnsubscriber(t *testing.T, secret string) *core.Unsubscriber {
	t.Helper()
	u, err := core.NewUnsubscriber(secret, "http://placeholder")
	if err != nil {
		t.Fatal(err)
	}
	return u
}
