package sgfake_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/campaignd/campaignd/plugins/sendgrid/sgfake"
)

// validMail returns a valid request body as a generic map, for tests to
// break one rule at a time.
func validMail() map[string]any {
	return map[string]any{
		"personalizations": []any{map[string]any{
			"to": []any{map[string]any{"email": "rcpt@example.org", "name": "Rcpt"}},
		}},
		"from":    map[string]any{"email": "news@example.com", "name": "News"},
		"subject": "Hello",
		"content": []any{
			map[string]any{"type": "text/plain", "value": "hi"},
			map[string]any{"type": "text/html", "value": "<p>hi</p>"},
		},
		"headers":     map[string]any{"List-Unsubscribe": "<https://example.com/u>"},
		"custom_args": map[string]any{"campaign_id": "1"},
	}
}

func pers(m map[string]any) map[string]any {
	return m["personalizations"].([]any)[0].(map[string]any)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

// post sends body to the fake with the default key and JSON content type;
// hdr entries override (an empty value removes the header).
func post(t *testing.T, s *sgfake.Server, body []byte, hdr map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+sgfake.MailSendPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.APIKey())
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

type apiErr struct {
	Message string  `json:"message"`
	Field   *string `json:"field"`
	Help    *string `json:"help"`
}

// errorsOf decodes an error body and checks its documented shape: every
// entry has "message", "field" and "help" keys.
func errorsOf(t *testing.T, a answer) []apiErr {
	t.Helper()
	var raw struct {
		Errors []map[string]json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(a.body, &raw); err != nil || len(raw.Errors) == 0 {
		t.Fatalf("status %d: body %q is not an {\"errors\":[...]} body", a.status, a.body)
	}
	for _, e := range raw.Errors {
		for _, k := range []string{"message", "field", "help"} {
			if _, ok := e[k]; !ok {
				t.Errorf("error %s lacks %q", mustJSON(t, e), k)
			}
		}
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q", ct)
	}
	var eb struct{ Errors []apiErr }
	_ = json.Unmarshal(a.body, &eb)
	return eb.Errors
}

func newServer(t *testing.T) *sgfake.Server {
	t.Helper()
	s := sgfake.New()
	t.Cleanup(s.Close)
	return s
}

func TestAccepts(t *testing.T) {
	s := newServer(t)
	a := post(t, s, mustJSON(t, validMail()), nil)
	if a.status != http.StatusAccepted || len(a.body) != 0 {
		t.Fatalf("got %d %q, want 202 with an empty body", a.status, a.body)
	}
	id := a.header.Get("X-Message-Id")
	if len(id) != 22 {
		t.Errorf("X-Message-Id %q, want 22 characters", id)
	}
	if _, err := http.ParseTime(a.header.Get("Date")); err != nil {
		t.Errorf("Date %q: %v", a.header.Get("Date"), err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages recorded", len(msgs))
	}
	m := msgs[0]
	if m.ID != id || m.Sandbox || m.Header.Get("Authorization") != "" {
		t.Errorf("record: id %q sandbox %v auth %q", m.ID, m.Sandbox, m.Header.Get("Authorization"))
	}
	if got := m.Recipients(); len(got) != 1 || got[0] != "rcpt@example.org" {
		t.Errorf("recipients %v", got)
	}
	if v, ok := m.Mail.Header("list-unsubscribe"); !ok || v != "<https://example.com/u>" {
		t.Errorf("header %q %v", v, ok)
	}
	if m.Mail.Body("text/html") != "<p>hi</p>" || m.Mail.From.Name != "News" || m.Mail.CustomArgs["campaign_id"] != "1" {
		t.Errorf("decoded mail %+v", m.Mail)
	}
	if st := s.Stats(); st.Requests != 1 || st.Accepted != 1 || st.ByStatus[202] != 1 {
		t.Errorf("stats %+v", st)
	}
	if sgfake.Validate(mustJSON(t, validMail())) != nil {
		t.Error("Validate rejects a valid body")
	}
}

func TestSandbox(t *testing.T) {
	s := newServer(t)
	m := validMail()
	m["mail_settings"] = map[string]any{"sandbox_mode": map[string]any{"enable": true}}
	a := post(t, s, mustJSON(t, m), nil)
	if a.status != http.StatusOK || a.header.Get("X-Message-Id") != "" {
		t.Fatalf("got %d id %q, want 200 without an id", a.status, a.header.Get("X-Message-Id"))
	}
	if msgs := s.Messages(); len(msgs) != 1 || !msgs[0].Sandbox {
		t.Errorf("messages %+v", msgs)
	}
	if st := s.Stats(); st.Sandboxed != 1 || st.Accepted != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestGzipBody(t *testing.T) {
	s := newServer(t)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(mustJSON(t, validMail()))
	_ = zw.Close()
	if a := post(t, s, buf.Bytes(), map[string]string{"Content-Encoding": "gzip"}); a.status != http.StatusAccepted {
		t.Fatalf("gzip body: %d %s", a.status, a.body)
	}
}

func TestProtocolErrors(t *testing.T) {
	s := newServer(t)
	valid := mustJSON(t, validMail())
	cases := []struct {
		name   string
		method string
		path   string
		body   []byte
		hdr    map[string]string
		status int
		msg    string
	}{
		{"no key", "", "", valid, map[string]string{"Authorization": ""}, 401, "authorization required"},
		{"basic auth", "", "", valid, map[string]string{"Authorization": "Basic eDp5"}, 401, "authorization required"},
		{"wrong key", "", "", valid, map[string]string{"Authorization": "Bearer SG.wrong"}, 401, "authorization grant is invalid, expired, or revoked"},
		{"GET", http.MethodGet, "", nil, nil, 405, "method not allowed"},
		{"other path", "", "/v3/mail/batch", valid, nil, 404, "not found"},
		{"malformed JSON", "", "", []byte(`{"personalizations":`), nil, 400, "Bad Request"},
		{"array body", "", "", []byte(`[1,2]`), nil, 400, "Bad Request"},
		{"trailing data", "", "", append(append([]byte{}, valid...), []byte(`{}`)...), nil, 400, "Bad Request"},
		{"invalid UTF-8", "", "", []byte("{\"subject\":\"\xff\"}"), nil, 415, "Invalid UTF8 in request"},
		{"not JSON", "", "", valid, map[string]string{"Content-Type": "text/plain"}, 415, "application/json"},
		{"unknown encoding", "", "", valid, map[string]string{"Content-Encoding": "br"}, 415, "not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := c.method
			if method == "" {
				method = http.MethodPost
			}
			path := c.path
			if path == "" {
				path = sgfake.MailSendPath
			}
			req, _ := http.NewRequest(method, s.URL()+path, bytes.NewReader(c.body))
			req.Header.Set("Authorization", "Bearer "+sgfake.DefaultAPIKey)
			req.Header.Set("Content-Type", "application/json")
			for k, v := range c.hdr {
				if v == "" {
					req.Header.Del(k)
				} else {
					req.Header.Set(k, v)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			a := answer{resp.StatusCode, resp.Header, b}
			if a.status != c.status {
				t.Fatalf("status %d (%s), want %d", a.status, a.body, c.status)
			}
			errs := errorsOf(t, a)
			if !strings.Contains(errs[0].Message, c.msg) || errs[0].Field != nil {
				t.Errorf("errors %s, want %q with a null field", a.body, c.msg)
			}
		})
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("%d messages accepted", n)
	}
}

func TestTooLarge(t *testing.T) {
	s := newServer(t)
	s.SetMaxBodyBytes(1000)
	m := validMail()
	m["content"] = []any{map[string]any{"type": "text/plain", "value": strings.Repeat("x", 2000)}}
	a := post(t, s, mustJSON(t, m), nil)
	if a.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", a.status)
	}
	if errs := errorsOf(t, a); errs[0].Message != "content too large" {
		t.Errorf("errors %s", a.body)
	}
	if sgfake.DefaultMaxBodyBytes != 30<<20 {
		t.Errorf("default limit %d", sgfake.DefaultMaxBodyBytes)
	}
}

// TestValidation breaks one documented rule per case and checks the
// status, the field and the message.
func TestValidation(t *testing.T) {
	long := strings.Repeat("a", 300)
	many := func(n int, f func(i int) any) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	addr := func(i int) any { return map[string]any{"email": fmt.Sprintf("r%d@example.org", i)} }
	cases := []struct {
		name   string
		edit   func(m map[string]any)
		field  string // "" means null
		msg    string
		status int // 0 means 400
	}{
		{"personalizations missing", func(m map[string]any) { delete(m, "personalizations") }, "personalizations", "You must have at least one personalization.", 0},
		{"personalizations empty", func(m map[string]any) { m["personalizations"] = []any{} }, "personalizations", "at least one personalization", 0},
		{"1001 personalizations", func(m map[string]any) {
			m["personalizations"] = many(1001, func(i int) any { return map[string]any{"to": []any{addr(i)}} })
		}, "personalizations", "You have provided 1001 personalizations", 0},
		{"to missing", func(m map[string]any) { delete(pers(m), "to") }, "personalizations.0.to", "The to parameter is required for all personalization objects.", 0},
		{"to empty", func(m map[string]any) { pers(m)["to"] = []any{} }, "personalizations.0.to", "to parameter is required", 0},
		{"to invalid", func(m map[string]any) { pers(m)["to"] = []any{map[string]any{"email": "nope"}} }, "personalizations.0.to.0.email", "The to array must at least have an email parameter with a valid email address", 0},
		{"to without dot", func(m map[string]any) { pers(m)["to"] = []any{map[string]any{"email": "a@localhost"}} }, "personalizations.0.to.0.email", "valid email address", 0},
		{"to with display name", func(m map[string]any) { pers(m)["to"] = []any{map[string]any{"email": "A <a@example.org>"}} }, "personalizations.0.to.0.email", "valid email address", 0},
		{"to too long", func(m map[string]any) {
			pers(m)["to"] = []any{map[string]any{"email": strings.Repeat("a", 64) + "@" + strings.Repeat("b", 252) + ".org"}}
		}, "personalizations.0.to.0.email", "The To email exceeds the maximum total length of 320 characters", 0},
		{"1001 recipients", func(m map[string]any) { pers(m)["to"] = many(1001, addr) }, "personalizations", "There is a limit of 1000 total recipients (to + cc + bcc) per request.", 0},
		{"duplicate to and cc", func(m map[string]any) { pers(m)["cc"] = []any{map[string]any{"email": "RCPT@example.org"}} }, "personalizations.0", "should be unique between to, cc, and bcc", 0},
		{"comma in name", func(m map[string]any) {
			pers(m)["to"] = []any{map[string]any{"email": "a@example.org", "name": "Doe, Jane"}}
		}, "personalizations.0.to.0.name", "may not contain ';' or ','", 0},
		{"to email not a string", func(m map[string]any) { pers(m)["to"] = []any{map[string]any{"email": false}} }, "", "Bad Request", 0},
		{"from missing", func(m map[string]any) { delete(m, "from") }, "from", "The from object must be provided for every email send.", 0},
		{"from invalid", func(m map[string]any) { m["from"] = map[string]any{"email": "news"} }, "from.email", "The from object must at least have an email parameter with a valid email address", 0},
		{"from without email", func(m map[string]any) { m["from"] = map[string]any{"name": "News"} }, "from.email", "valid email address", 0},
		{"subject missing", func(m map[string]any) { delete(m, "subject") }, "subject", "The subject is required.", 0},
		{"subject empty", func(m map[string]any) { m["subject"] = "" }, "subject", "The subject of your email must be a string at least one character in length.", 0},
		{"personalization subject empty", func(m map[string]any) { pers(m)["subject"] = "" }, "personalizations.0.subject", "at least one character", 0},
		{"subject a number", func(m map[string]any) { m["subject"] = 3 }, "", "Bad Request", 0},
		{"content missing", func(m map[string]any) { delete(m, "content") }, "content", "The content param is required unless you are using a transactional template", 0},
		{"content empty", func(m map[string]any) { m["content"] = []any{} }, "content", "There must be at least one defined content block.", 0},
		{"content value empty", func(m map[string]any) {
			m["content"] = []any{map[string]any{"type": "text/plain", "value": ""}}
		}, "content.0.value", "The content value must be a string at least one character in length.", 0},
		{"content value missing", func(m map[string]any) { m["content"] = []any{map[string]any{"type": "text/plain"}} }, "content.0.value", "A content value is required", 0},
		{"content type empty", func(m map[string]any) { m["content"] = []any{map[string]any{"type": "", "value": "x"}} }, "content.0.type", "Your content type must be a string with length of at least one character.", 0},
		{"content type with parameter", func(m map[string]any) {
			m["content"] = []any{map[string]any{"type": "text/plain; charset=utf-8", "value": "x"}}
		}, "content.0.type", "Cannot contain ';', or CRLF characters.", 0},
		{"html before plain", func(m map[string]any) {
			c := m["content"].([]any)
			m["content"] = []any{c[1], c[0]}
		}, "content", "Following RFC 1341, section 7.2", 0},
		{"other type first", func(m map[string]any) {
			m["content"] = []any{map[string]any{"type": "text/calendar", "value": "x"}, map[string]any{"type": "text/html", "value": "y"}}
		}, "content", "text/plain needs to be first", 0},
		{"plain twice", func(m map[string]any) {
			m["content"] = []any{map[string]any{"type": "text/plain", "value": "x"}, map[string]any{"type": "text/plain", "value": "y"}}
		}, "content", "may only be provided once", 0},
		{"reserved header", func(m map[string]any) { m["headers"] = map[string]any{"Reply-To": "x@example.com"} }, "headers", "Header can not be one of the reserved keys.", 0},
		{"reserved header any case", func(m map[string]any) { m["headers"] = map[string]any{"X-SG-EID": "1"} }, "headers", "reserved keys", 0},
		{"reserved personalization header", func(m map[string]any) { pers(m)["headers"] = map[string]any{"DKIM-Signature": "x"} }, "personalizations.0.headers", "Header cannot be one of the reserved keys.", 0},
		{"header not a string", func(m map[string]any) { m["headers"] = map[string]any{"X-Count": 3} }, "headers", "The header values must be strings.", 0},
		{"header case duplicates", func(m map[string]any) { m["headers"] = map[string]any{"X-A": "1", "x-a": "2"} }, "headers", "The headers cannot contain duplicate keys.", 0},
		{"header key with space", func(m map[string]any) { m["headers"] = map[string]any{"X A": "1"} }, "headers", "Header keys cannot contain non-ASCII characters and empty spaces.", 0},
		{"custom_args not strings", func(m map[string]any) { m["custom_args"] = map[string]any{"campaign_id": 1} }, "custom_args", "All values of custom arguments object must be strings", 0},
		{"custom_args too large", func(m map[string]any) { m["custom_args"] = map[string]any{"big": strings.Repeat("x", 10000)} }, "custom_args", "may not exceed 10,000 bytes per personalization", 0},
		{"custom_args too large merged", func(m map[string]any) {
			m["custom_args"] = map[string]any{"a": strings.Repeat("x", 6000)}
			pers(m)["custom_args"] = map[string]any{"b": strings.Repeat("y", 6000)}
		}, "personalizations.0.custom_args", "10,000 bytes", 0},
		{"personalization custom_args empty", func(m map[string]any) { pers(m)["custom_args"] = map[string]any{} }, "personalizations.0.custom_args", "custom_args cannot be empty.", 0},
		{"11 categories", func(m map[string]any) { m["categories"] = many(11, func(i int) any { return fmt.Sprint("c", i) }) }, "categories", "You provided 11 categories.", 0},
		{"category repeated", func(m map[string]any) { m["categories"] = []any{"a", "a"} }, "categories", "you have included a more than once", 0},
		{"category too long", func(m map[string]any) { m["categories"] = []any{long} }, "categories", "must not be longer than 255 characters", 0},
		{"category not ASCII", func(m map[string]any) { m["categories"] = []any{"café"} }, "categories", "Categories can not contain non-ASCII characters.", 0},
		{"category not a string", func(m map[string]any) { m["categories"] = []any{1} }, "categories", "Categories must be an array of strings.", 0},
		{"asm group not an integer", func(m map[string]any) { m["asm"] = map[string]any{"group_id": "12"} }, "asm.group_id", "The ASM group ID must be an integer.", 0},
		{"asm too many groups", func(m map[string]any) {
			m["asm"] = map[string]any{"group_id": 1, "groups_to_display": many(26, func(i int) any { return i + 1 })}
		}, "asm.groups_to_display", "limit of 25 unsubscribe groups", 0},
		{"send_at far ahead", func(m map[string]any) { m["send_at"] = time.Now().Add(73 * time.Hour).Unix() }, "send_at", "Scheduling more than 72 hours in advance is forbidden.", 0},
		{"send_at not an integer", func(m map[string]any) { m["send_at"] = "soon" }, "send_at", "expecting a Unix timestamp as an integer", 0},
		{"reply_to invalid", func(m map[string]any) { m["reply_to"] = map[string]any{"email": "x"} }, "reply_to", "The reply_to object, when used, must at least have an email parameter", 0},
		{"reply_to and reply_to_list", func(m map[string]any) {
			m["reply_to"] = map[string]any{"email": "a@example.com"}
			m["reply_to_list"] = []any{map[string]any{"email": "b@example.com"}}
		}, "reply_to_list", "not both", 0},
		{"unknown field", func(m map[string]any) { m["custom_arg"] = map[string]any{"x": "y"} }, "custom_arg", "Unknown field", 0},
		{"unknown personalization field", func(m map[string]any) { pers(m)["too"] = []any{} }, "personalizations.0.too", "Unknown field", 0},
		{"sandbox enable not a boolean", func(m map[string]any) {
			m["mail_settings"] = map[string]any{"sandbox_mode": map[string]any{"enable": "yes"}}
		}, "mail_settings.sandbox_mode.enable", "The sandbox mode enable param should be a boolean value.", 0},
		{"click tracking not a boolean", func(m map[string]any) {
			m["tracking_settings"] = map[string]any{"click_tracking": map[string]any{"enable": 1}}
		}, "tracking_settings.click_tracking.enable", "click tracking enable param", 0},
		{"attachment not base64", func(m map[string]any) {
			m["attachments"] = []any{map[string]any{"content": "%%%", "filename": "a.txt"}}
		}, "attachments.0.content", "The attachment content must be base64 encoded.", 0},
		{"attachment without filename", func(m map[string]any) { m["attachments"] = []any{map[string]any{"content": "aGk="}} }, "attachments.0.filename", "filename is required.", 0},
		{"batch_id not a string", func(m map[string]any) { m["batch_id"] = 5 }, "batch_id", "The batch_id must be a string.", 0},
	}
	s := newServer(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := validMail()
			c.edit(m)
			a := post(t, s, mustJSON(t, m), nil)
			want := c.status
			if want == 0 {
				want = http.StatusBadRequest
			}
			if a.status != want {
				t.Fatalf("status %d (%s), want %d", a.status, a.body, want)
			}
			var found bool
			for _, e := range errorsOf(t, a) {
				field := ""
				if e.Field != nil {
					field = *e.Field
				}
				if field == c.field && strings.Contains(e.Message, c.msg) {
					found = true
					if field != "" && (e.Help == nil || !strings.HasPrefix(*e.Help, "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.")) {
						t.Errorf("help %v", e.Help)
					}
				}
			}
			if !found {
				t.Errorf("errors %s, want field %q with %q", a.body, c.field, c.msg)
			}
			if sgfake.Validate(mustJSON(t, m)) == nil {
				t.Error("Validate accepts it")
			}
		})
	}
	if st := s.Stats(); st.Accepted != 0 || len(s.Messages()) != 0 {
		t.Errorf("an invalid request was accepted: %+v", st)
	}
}

// TestValidationAccepts checks documented exceptions that must pass.
func TestValidationAccepts(t *testing.T) {
	cases := []struct {
		name string
		edit func(m map[string]any)
	}{
		{"subject in every personalization", func(m map[string]any) { delete(m, "subject"); pers(m)["subject"] = "Hi" }},
		{"template without subject or content", func(m map[string]any) {
			delete(m, "subject")
			delete(m, "content")
			m["template_id"] = "d-123"
		}},
		{"html only", func(m map[string]any) { m["content"] = []any{map[string]any{"type": "text/html", "value": "<b>x</b>"}} }},
		{"plain, html, then other", func(m map[string]any) {
			m["content"] = append(m["content"].([]any), map[string]any{"type": "text/calendar", "value": "BEGIN:VCALENDAR"})
		}},
		{"Message-ID header", func(m map[string]any) { m["headers"] = map[string]any{"Message-ID": "<1.2@example.com>"} }},
		{"null optional field", func(m map[string]any) { m["reply_to"] = nil }},
		{"1000 recipients", func(m map[string]any) {
			to := make([]any, 1000)
			for i := range to {
				to[i] = map[string]any{"email": fmt.Sprintf("r%d@example.org", i)}
			}
			pers(m)["to"] = to
		}},
		{"custom_args just under the limit", func(m map[string]any) { m["custom_args"] = map[string]any{"b": strings.Repeat("x", 9990)} }},
		{"asm with group", func(m map[string]any) { m["asm"] = map[string]any{"group_id": 42} }},
	}
	s := newServer(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := validMail()
			c.edit(m)
			if a := post(t, s, mustJSON(t, m), nil); a.status != http.StatusAccepted {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
		})
	}
}

func TestSeveralErrorsAtOnce(t *testing.T) {
	s := newServer(t)
	m := validMail()
	delete(m, "from")
	delete(m, "subject")
	a := post(t, s, mustJSON(t, m), nil)
	if errs := errorsOf(t, a); a.status != 400 || len(errs) != 2 {
		t.Fatalf("got %d %s, want 400 with two errors", a.status, a.body)
	}
}

func TestKnobs(t *testing.T) {
	t.Run("unknown fields allowed", func(t *testing.T) {
		s := newServer(t)
		s.SetAllowUnknownFields(true)
		m := validMail()
		m["future_field"] = true
		if a := post(t, s, mustJSON(t, m), nil); a.status != 202 {
			t.Fatalf("status %d %s", a.status, a.body)
		}
	})
	t.Run("verified senders", func(t *testing.T) {
		s := newServer(t)
		s.SetVerifiedSenders("example.com", "solo@example.net")
		for from, want := range map[string]int{"news@example.com": 202, "solo@example.net": 202, "other@example.net": 403, "x@evil.test": 403} {
			m := validMail()
			m["from"] = map[string]any{"email": from}
			a := post(t, s, mustJSON(t, m), nil)
			if a.status != want {
				t.Errorf("from %s: %d, want %d", from, a.status, want)
			}
			if want == 403 {
				if e := errorsOf(t, a); e[0].Field == nil || *e[0].Field != "from" || !strings.Contains(e[0].Message, "verified Sender Identity") {
					t.Errorf("403 body %s", a.body)
				}
			}
		}
	})
	t.Run("asm groups", func(t *testing.T) {
		s := newServer(t)
		s.SetASMGroups(5)
		m := validMail()
		m["asm"] = map[string]any{"group_id": 7}
		a := post(t, s, mustJSON(t, m), nil)
		if a.status != 400 || !strings.Contains(errorsOf(t, a)[0].Message, "You provided 7.") {
			t.Errorf("unknown group: %d %s", a.status, a.body)
		}
		m["asm"] = map[string]any{"group_id": 5}
		if a := post(t, s, mustJSON(t, m), nil); a.status != 202 {
			t.Errorf("known group: %d %s", a.status, a.body)
		}
	})
	t.Run("api key", func(t *testing.T) {
		s := newServer(t)
		s.SetAPIKey("SG.other")
		if a := post(t, s, mustJSON(t, validMail()), map[string]string{"Authorization": "Bearer " + sgfake.DefaultAPIKey}); a.status != 401 {
			t.Errorf("old key: %d", a.status)
		}
		if a := post(t, s, mustJSON(t, validMail()), nil); a.status != 202 {
			t.Errorf("new key: %d", a.status)
		}
	})
}

func TestScripted(t *testing.T) {
	s := newServer(t)
	body := mustJSON(t, validMail())
	s.FailNext(500, 2)
	s.Enqueue(sgfake.Status(503), sgfake.Response{Status: 400, Body: `{"errors":[{"message":"custom","field":"x","help":null}]}`})
	if s.Pending() != 4 {
		t.Fatalf("pending %d", s.Pending())
	}
	// An unauthenticated request does not consume a scripted answer.
	if a := post(t, s, body, map[string]string{"Authorization": ""}); a.status != 401 {
		t.Fatalf("no key: %d", a.status)
	}
	for i, want := range []int{500, 500, 503, 400, 202} {
		a := post(t, s, body, nil)
		if a.status != want {
			t.Fatalf("request %d: %d, want %d", i, a.status, want)
		}
		if want >= 400 {
			errorsOf(t, a)
		}
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
	if st := s.Stats(); st.ByStatus[500] != 2 || st.ByStatus[503] != 1 || st.Requests != 6 {
		t.Errorf("stats %+v", st)
	}
}

func TestRateLimitHeaders(t *testing.T) {
	s := newServer(t)
	s.RateLimit(1, 3*time.Second)
	s.Enqueue(sgfake.Response{Status: 429, NoRateLimitHeaders: true, Header: http.Header{"Retry-After": {"7"}}})
	a := post(t, s, mustJSON(t, validMail()), nil)
	if a.status != 429 {
		t.Fatalf("status %d", a.status)
	}
	if e := errorsOf(t, a); e[0].Message != "too many requests" {
		t.Errorf("body %s", a.body)
	}
	date, err := http.ParseTime(a.header.Get("Date"))
	if err != nil {
		t.Fatal(err)
	}
	reset, err := strconv.ParseInt(a.header.Get("X-RateLimit-Reset"), 10, 64)
	if err != nil || reset-date.Unix() != 3 {
		t.Errorf("X-RateLimit-Reset %q with Date %s, want Date+3", a.header.Get("X-RateLimit-Reset"), date)
	}
	if a.header.Get("X-RateLimit-Limit") != "600" || a.header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("limit headers %v", a.header)
	}
	a = post(t, s, mustJSON(t, validMail()), nil)
	if a.status != 429 || a.header.Get("X-RateLimit-Reset") != "" || a.header.Get("Retry-After") != "7" {
		t.Errorf("second 429: %d %v", a.status, a.header)
	}
}

func TestRespondTo(t *testing.T) {
	s := newServer(t)
	s.RespondTo("Slow@Example.org", sgfake.RateLimited(2*time.Second))
	m := validMail()
	pers(m)["to"] = []any{map[string]any{"email": "slow@example.org"}}
	if a := post(t, s, mustJSON(t, m), nil); a.status != 429 {
		t.Fatalf("rule: %d", a.status)
	}
	if a := post(t, s, mustJSON(t, validMail()), nil); a.status != 202 {
		t.Fatalf("other recipient: %d", a.status)
	}
	// Validation still comes first.
	delete(m, "subject")
	if a := post(t, s, mustJSON(t, m), nil); a.status != 400 {
		t.Fatalf("invalid with rule: %d", a.status)
	}
	s.ClearRules()
	m["subject"] = "x"
	if a := post(t, s, mustJSON(t, m), nil); a.status != 202 {
		t.Fatalf("after ClearRules: %d", a.status)
	}
}

func TestStallAndDelayEndWithTheClient(t *testing.T) {
	s := newServer(t)
	s.Stall(1)
	body := mustJSON(t, validMail())
	send := func(timeout time.Duration) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+sgfake.MailSendPath, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+sgfake.DefaultAPIKey)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return time.Since(start), err
	}
	if d, err := send(200 * time.Millisecond); err == nil || d > 2*time.Second {
		t.Fatalf("stalled request: %v after %s", err, d)
	}
	s.SetDelay(time.Hour)
	if d, err := send(200 * time.Millisecond); err == nil || d > 2*time.Second {
		t.Fatalf("delayed request: %v after %s", err, d)
	}
	s.SetDelay(50 * time.Millisecond)
	if d, err := send(5 * time.Second); err != nil || d < 50*time.Millisecond {
		t.Fatalf("short delay: %v after %s", err, d)
	}
	// Close releases a hanging handler promptly.
	s.SetDelay(0)
	s.Stall(1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = send(time.Minute)
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	s.Close()
	<-done
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close with a hanging request took %s", d)
	}
}

func TestConcurrentRequests(t *testing.T) {
	s := newServer(t)
	s.FailNext(503, 5)
	body := mustJSON(t, validMail())
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[int]int{}
	for range 40 {
		wg.Go(func() {
			a := post(t, s, body, nil)
			mu.Lock()
			counts[a.status]++
			mu.Unlock()
			_ = s.Stats()
			_ = s.Messages()
		})
	}
	wg.Wait()
	if counts[503] != 5 || counts[202] != 35 || len(s.Messages()) != 35 {
		t.Errorf("answers %v, %d messages", counts, len(s.Messages()))
	}
	ids := map[string]bool{}
	for _, m := range s.Messages() {
		if ids[m.ID] {
			t.Errorf("X-Message-Id %s given twice", m.ID)
		}
		ids[m.ID] = true
	}
}

func TestScopes(t *testing.T) {
	f := sgfake.New()
	defer f.Close()
	get := func(key string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, f.URL()+sgfake.ScopesPath, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(f.APIKey()); code != 200 || body != `{"scopes":["mail.send"]}` {
		t.Errorf("right key: %d %s", code, body)
	}
	f.SetScopes("mail.send", "stats.read")
	if code, body := get(f.APIKey()); code != 200 || body != `{"scopes":["mail.send","stats.read"]}` {
		t.Errorf("after SetScopes: %d %s", code, body)
	}
	if code, body := get("SG.wrong"); code != 401 || !strings.Contains(body, "authorization grant is invalid") {
		t.Errorf("wrong key: %d %s", code, body)
	}
	if code, body := get(""); code != 401 || !strings.Contains(body, "authorization required") {
		t.Errorf("no key: %d %s", code, body)
	}
	resp, err := http.Post(f.URL()+sgfake.ScopesPath, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET" {
		t.Errorf("POST scopes: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if st := f.Stats(); st.ScopeRequests != 4 || st.Requests != 0 {
		t.Errorf("stats = %+v", st)
	}
}
