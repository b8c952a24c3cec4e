package main_test

// End-to-end through the daemon's public HTTP listener ([http] listen):
// the cron endpoints, RFC 8058 one-click unsubscribe and the signed
// SendGrid Event Webhook, against the built campaignd serving on a
// loopback port, with the outbox sender.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/web"
)

// httpResp is one answer of the public listener.
type httpResp struct {
	Status int
	Header http.Header
	Body   string
}

// publicClient talks to the daemon's public listener.
type publicClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

// do sends one request; header values are set as given.
func (p *publicClient) do(method, path string, header map[string]string, body string) httpResp {
	p.t.Helper()
	req, err := http.NewRequest(method, p.base+path, strings.NewReader(body))
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := p.c.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return httpResp{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// wantStatus fails the test unless r has status code.
func (p *publicClient) wantStatus(what string, r httpResp, code int) {
	p.t.Helper()
	if r.Status != code {
		p.t.Fatalf("%s: status %d, want %d\n%s", what, r.Status, code, r.Body)
	}
}

// decode decodes a JSON object answer into v and returns its sorted keys.
func (p *publicClient) decode(what string, r httpResp, v any) []string {
	p.t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.Body), &m); err != nil {
		p.t.Fatalf("%s: answer is not a JSON object: %v\n%s", what, err, r.Body)
	}
	if err := json.Unmarshal([]byte(r.Body), v); err != nil {
		p.t.Fatalf("%s: decode %T: %v\n%s", what, v, err, r.Body)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// webhookSigner signs SendGrid Event Webhook posts as SendGrid does:
// ECDSA P-256 over SHA-256 of the timestamp header followed by the body.
type webhookSigner struct {
	key *ecdsa.PrivateKey
}

func newWebhookSigner(t *testing.T) *webhookSigner {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &webhookSigner{key: k}
}

// publicKey is the verification key as SendGrid shows it: base64 of the
// DER (PKIX) public key.
func (s *webhookSigner) publicKey(t *testing.T) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&s.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// headers returns the signature headers for body signed at ts.
func (s *webhookSigner) headers(t *testing.T, ts time.Time, body string) map[string]string {
	t.Helper()
	stamp := strconv.FormatInt(ts.Unix(), 10)
	h := sha256.Sum256([]byte(stamp + body))
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"Content-Type":                           "application/json",
		"X-Twilio-Email-Event-Webhook-Signature": base64.StdEncoding.EncodeToString(sig),
		"X-Twilio-Email-Event-Webhook-Timestamp": stamp,
	}
}

// httpState is everything the public endpoints may change, as the CLI
// shows it.
type httpState struct {
	Campaign   core.Campaign
	Recipients []core.Recipient
	Suppressed []core.Suppression
	Ticks      int
	Executions int
	Outbox     []string
}

func readHTTPState(t *testing.T, e *Env, id int64) httpState {
	t.Helper()
	var s httpState
	e.MustJSON(&s.Campaign, "campaign", "show", strconv.FormatInt(id, 10))
	e.MustJSON(&s.Recipients, "recipients", "list", strconv.FormatInt(id, 10), "--limit", "1000")
	e.MustJSON(&s.Suppressed, "suppress", "list")
	var ticks, execs []json.RawMessage
	e.MustJSON(&ticks, "ticks", "--limit", "1000")
	e.MustJSON(&execs, "executions")
	s.Ticks, s.Executions = len(ticks), len(execs)
	ents, _ := os.ReadDir(e.Outbox)
	for _, ent := range ents {
		if strings.HasSuffix(ent.Name(), ".eml") {
			s.Outbox = append(s.Outbox, ent.Name())
		}
	}
	return s
}

// unchanged fails the test if the state differs from before.
func (s httpState) unchanged(t *testing.T, what string, after httpState) {
	t.Helper()
	b, _ := json.Marshal(s)
	a, _ := json.Marshal(after)
	if string(a) != string(b) {
		t.Errorf("%s changed the state:\nbefore %s\nafter  %s", what, b, a)
	}
}

// TestHTTPListener drives a campaign through the daemon's public listener
// only: execute and tick by the cron endpoints, one-click unsubscribe from
// the List-Unsubscribe URL of a sent .eml, and a bounce by a signed
// SendGrid webhook. Every refused request (wrong bearer, forged token, bad
// signature, malformed body) changes nothing.
func TestHTTPListener(t *testing.T) {
	t.Parallel()
	const (
		unsubSecret = "http-e2e-unsubscribe-secret"
		cronSecret  = "http-e2e-cron-secret-0123456789"
	)
	signer := newWebhookSigner(t)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	// The webhook route exists only with a SendGrid sender configured (its
	// plugin never starts here: the campaign sends through outbox).
	e := NewEnv(t, fmt.Sprintf("tick_interval = \"0s\"\n[http]\nlisten = \"127.0.0.1:%d\"\npublic_url = %q\nunsubscribe_secret = %q\ncron_secret = %q\nsendgrid_public_key = %q\n"+
		"[senders.sg]\nplugin = \"sendgrid\"\n[senders.sg.options]\napi_key = \"unused\"\n",
		port, base, unsubSecret, cronSecret, signer.publicKey(t)))
	d := e.StartDaemon()
	p := &publicClient{t: t, base: base, c: &http.Client{Timeout: 30 * time.Second}}
	bearer := map[string]string{"Authorization": "Bearer " + cronSecret}

	emails := []string{"ann@example.org", "bob@example.org", "cat@example.org", "dan@example.org"}
	id := MustCreateCampaign(t, e, "--sender", "outbox", "--from", "News <news@example.com>")
	ids := strconv.FormatInt(id, 10)
	e.MustRun("recipients", "import", ids, WriteFile(t, e.Dir, "r.csv", "email,name\n"+strings.Join(emails, ",x\n")+",x\n"))
	e.MustRun("campaign", "activate", ids)

	// The control API is not served on the public port.
	for _, path := range []string{"/v1/status", "/v1/campaigns", "/v1/campaigns/" + ids} {
		if r := p.do("GET", path, nil, ""); r.Status != http.StatusNotFound {
			t.Errorf("GET %s on the public port: %d, want 404\n%s", path, r.Status, r.Body)
		}
	}
	if r := p.do("POST", "/v1/tick", bearer, ""); r.Status != http.StatusNotFound {
		t.Errorf("POST /v1/tick on the public port: %d, want 404", r.Status)
	}

	// Execute: a missing or wrong bearer is 401 and queues nothing.
	execPath := "/api/campaigns/" + ids + "/execute"
	before := readHTTPState(t, e, id)
	for what, h := range map[string]map[string]string{
		"no bearer":        nil,
		"wrong bearer":     {"Authorization": "Bearer " + cronSecret + "x"},
		"prefix of secret": {"Authorization": "Bearer " + cronSecret[:16]},
		"basic auth":       {"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("cron:"+cronSecret))},
	} {
		r := p.do("POST", execPath, h, "")
		if r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("execute with %s: %d (WWW-Authenticate %q), want 401 with a challenge\n%s", what, r.Status, r.Header.Get("WWW-Authenticate"), r.Body)
		}
		if strings.Contains(r.Body, cronSecret) {
			t.Errorf("execute with %s: the answer shows the secret", what)
		}
	}
	before.unchanged(t, "refused execute requests", readHTTPState(t, e, id))
	if before.Campaign.Status != "ACTIVE" || before.Campaign.Stats.Pending != int64(len(emails)) {
		t.Fatalf("campaign before execute: %s %+v", before.Campaign.Status, before.Campaign.Stats)
	}
	r := p.do("POST", execPath, bearer, "")
	p.wantStatus("execute", r, http.StatusOK)
	var ex web.CronExecuteResult
	if keys := p.decode("execute", r, &ex); strings.Join(keys, ",") != "message,queued" || ex.Queued != int64(len(emails)) || ex.Message == "" {
		t.Errorf("execute answer %s: keys %v, want {queued: %d, message}", r.Body, keys, len(emails))
	}
	if st := readHTTPState(t, e, id); st.Campaign.Status != "SENDING" || st.Campaign.Stats.Queued != int64(len(emails)) || st.Executions != 1 || len(st.Outbox) != 0 {
		t.Errorf("after execute: %s %+v, %d executions, outbox %v; want SENDING, all queued, 1 execution, nothing sent",
			st.Campaign.Status, st.Campaign.Stats, st.Executions, st.Outbox)
	}
	if r := p.do("POST", "/api/campaigns/abc/execute", bearer, ""); r.Status != http.StatusBadRequest {
		t.Errorf("execute of campaign id abc: %d, want 400", r.Status)
	}
	if r := p.do("POST", "/api/campaigns/9999/execute", bearer, ""); r.Status != http.StatusNotFound {
		t.Errorf("execute of unknown campaign: %d, want 404", r.Status)
	}

	// Tick: a missing or wrong bearer is 401 and sends nothing.
	const tickPath = "/api/cron/process-email-queue"
	before = readHTTPState(t, e, id)
	for what, h := range map[string]map[string]string{
		"no bearer":    nil,
		"wrong bearer": {"Authorization": "Bearer not-the-cron-secret-at-all"},
		"empty bearer": {"Authorization": "Bearer "},
	} {
		if r := p.do("POST", tickPath, h, ""); r.Status != http.StatusUnauthorized {
			t.Errorf("tick with %s: %d, want 401\n%s", what, r.Status, r.Body)
		}
	}
	if r := p.do("GET", tickPath, bearer, ""); r.Status != http.StatusMethodNotAllowed {
		t.Errorf("GET %s: %d, want 405", tickPath, r.Status)
	}
	before.unchanged(t, "refused tick requests", readHTTPState(t, e, id))

	r = p.do("POST", tickPath, bearer, "{}")
	p.wantStatus("tick", r, http.StatusOK)
	var tr web.CronTickResult
	keys := p.decode("tick", r, &tr)
	for _, k := range []string{"processed", "sent", "failed"} {
		if !strings.Contains(","+strings.Join(keys, ",")+",", ","+k+",") {
			t.Errorf("tick answer %s lacks %q", r.Body, k)
		}
	}
	if tr.Processed != len(emails) || tr.Sent != len(emails) || tr.Failed != 0 || tr.Skipped {
		t.Errorf("tick answer %+v, want %d processed and sent", tr, len(emails))
	}
	st := readHTTPState(t, e, id)
	if st.Campaign.Status != "COMPLETED" || st.Campaign.Stats.Sent != int64(len(emails)) || len(st.Outbox) != len(emails) || st.Ticks != 1 {
		t.Fatalf("after the cron tick: %s %+v, outbox %v, %d ticks", st.Campaign.Status, st.Campaign.Stats, st.Outbox, st.Ticks)
	}
	var ticks []core.TickRecord
	e.MustJSON(&ticks, "ticks")
	if len(ticks) != 1 || ticks[0].Trigger != "http" || ticks[0].Sent != len(emails) {
		t.Errorf("tick records %+v, want one http tick", ticks)
	}
	rid := map[string]int64{}
	for _, rc := range st.Recipients {
		if rc.Status != "SENT" {
			t.Errorf("%s: %s, want SENT", rc.Email, rc.Status)
		}
		rid[rc.Email] = rc.ID
	}

	// The sent message carries its one-click unsubscribe URL.
	ann := "ann@example.org"
	f, err := os.Open(filepath.Join(e.Outbox, fmt.Sprintf("%d-%d.eml", id, rid[ann])))
	if err != nil {
		t.Fatalf("outbox message of %s: %v", ann, err)
	}
	msg, err := mail.ReadMessage(f)
	f.Close()
	if err != nil {
		t.Fatalf("parse .eml: %v", err)
	}
	lu := msg.Header.Get("List-Unsubscribe")
	if !strings.HasPrefix(lu, "<"+base+"/unsubscribe/") || !strings.HasSuffix(lu, ">") {
		t.Fatalf("List-Unsubscribe %q, want <%s/unsubscribe/TOKEN>", lu, base)
	}
	if got := msg.Header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post %q", got)
	}
	unsubURL := strings.TrimSuffix(strings.TrimPrefix(lu, "<"), ">")
	unsubPath := strings.TrimPrefix(unsubURL, base)
	token := strings.TrimPrefix(unsubPath, "/unsubscribe/")
	if want := unsubToken(unsubSecret, id, rid[ann]); token != want {
		t.Errorf("token %q, want %q", token, want)
	}
	oneClick := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}

	// GET shows a page and changes nothing (link scanners fetch links).
	before = readHTTPState(t, e, id)
	r = p.do("GET", unsubPath, nil, "")
	p.wantStatus("GET unsubscribe page", r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") ||
		!strings.Contains(r.Body, `method="post"`) || !strings.Contains(r.Body, "One-Click") {
		t.Errorf("unsubscribe page (%s) has no one-click form:\n%s", ct, r.Body)
	}
	if r := p.do("HEAD", unsubPath, nil, ""); r.Status != http.StatusOK {
		t.Errorf("HEAD unsubscribe page: %d, want 200", r.Status)
	}
	after := readHTTPState(t, e, id)
	before.unchanged(t, "GET of the unsubscribe page", after)
	if len(after.Suppressed) != 0 {
		t.Errorf("suppression list after a GET: %+v, want empty", after.Suppressed)
	}

	// Forged tokens are 404 and change nothing: every single changed
	// character, another recipient's id under this signature, and
	// non-canonical spellings of the same ids.
	sig := token[strings.LastIndexByte(token, '.')+1:]
	forged := map[string]string{
		"other recipient": fmt.Sprintf("%d.%d.%s", id, rid["bob@example.org"], sig),
		"other campaign":  fmt.Sprintf("%d.%d.%s", id+1, rid[ann], sig),
		"leading zero":    fmt.Sprintf("0%d.%d.%s", id, rid[ann], sig),
		"plus sign":       fmt.Sprintf("+%d.%d.%s", id, rid[ann], sig),
		"padded":          token + "=",
		"no signature":    fmt.Sprintf("%d.%d.", id, rid[ann]),
		"two parts":       fmt.Sprintf("%d.%s", rid[ann], sig),
	}
	const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(token); i++ {
		if token[i] == '.' {
			continue
		}
		for _, c := range []byte{b64url[(strings.IndexByte(b64url, token[i])+1)%64], b64url[(strings.IndexByte(b64url, token[i])+2)%64]} {
			forged[fmt.Sprintf("char %d changed to %c", i, c)] = token[:i] + string(c) + token[i+1:]
		}
	}
	for what, tok := range forged {
		if r := p.do("GET", "/unsubscribe/"+tok, nil, ""); r.Status != http.StatusNotFound {
			t.Errorf("GET forged token (%s) %q: %d, want 404", what, tok, r.Status)
		}
	}
	// The one-click POST with forged tokens, including the last character
	// changed by one (which, unless the token is checked canonically,
	// decodes to the same signature bytes).
	mid := len(token) - 10
	for what, tok := range map[string]string{
		"other recipient":     forged["other recipient"],
		"leading zero":        forged["leading zero"],
		"middle char changed": token[:mid] + string(b64url[(strings.IndexByte(b64url, token[mid])+1)%64]) + token[mid+1:],
		"last char changed":   token[:len(token)-1] + string(b64url[(strings.IndexByte(b64url, token[len(token)-1])+1)%64]),
	} {
		if r := p.do("POST", "/unsubscribe/"+tok, oneClick, "List-Unsubscribe=One-Click"); r.Status != http.StatusNotFound {
			t.Errorf("POST forged token (%s) %q: %d, want 404", what, tok, r.Status)
		}
	}
	// A POST without the one-click field is refused too.
	if r := p.do("POST", unsubPath, oneClick, "foo=bar"); r.Status != http.StatusBadRequest {
		t.Errorf("POST without List-Unsubscribe=One-Click: %d, want 400", r.Status)
	}
	before.unchanged(t, "forged unsubscribe requests", readHTTPState(t, e, id))

	// The one-click POST unsubscribes; a second one is harmless.
	for i := range 2 {
		r = p.do("POST", unsubPath, oneClick, "List-Unsubscribe=One-Click")
		p.wantStatus(fmt.Sprintf("one-click unsubscribe #%d", i+1), r, http.StatusOK)
	}
	st = readHTTPState(t, e, id)
	if len(st.Suppressed) != 1 || st.Suppressed[0].Email != ann || st.Suppressed[0].Source != "unsubscribe" {
		t.Errorf("suppression list after the one-click POST: %+v, want %s from unsubscribe", st.Suppressed, ann)
	}
	var sup []core.Suppression
	e.MustJSON(&sup, "suppress", "list")
	if len(sup) != 1 || sup[0].Email != ann || sup[0].Source != "unsubscribe" {
		t.Errorf("suppress list --json: %+v", sup)
	}

	// SendGrid webhook: a signed bounce for a SENT recipient.
	bob := "bob@example.org"
	ts := time.Now()
	bounce := fmt.Sprintf(`[{"email":%q,"timestamp":%d,"event":"bounce","type":"bounce","status":"5.1.1","reason":"550 5.1.1 The email account that you tried to reach does not exist","sg_event_id":"sg-evt-bounce-1","sg_message_id":"abc.filter-1","campaign_id":"%d","recipient_id":"%d","message_id":"<c%d.r%d@example.com>"},`+
		`{"email":%q,"timestamp":%d,"event":"processed","sg_event_id":"sg-evt-processed-1","campaign_id":"%d","recipient_id":"%d"}]`,
		bob, ts.Unix(), id, rid[bob], id, rid[bob], bob, ts.Unix(), id, rid[bob])
	r = p.do("POST", "/webhooks/sendgrid", signer.headers(t, ts, bounce), bounce)
	p.wantStatus("signed bounce webhook", r, http.StatusOK)
	var wr web.WebhookResult
	p.decode("bounce webhook", r, &wr)
	if wr != (web.WebhookResult{EventsResult: core.EventsResult{Applied: 1}, Ignored: 1}) {
		t.Errorf("bounce webhook answer %+v, want 1 applied, 1 ignored (processed)", wr)
	}
	var bounced []core.Recipient
	e.MustJSON(&bounced, "recipients", "list", ids, "--status", "BOUNCED")
	if len(bounced) != 1 || bounced[0].Email != bob {
		t.Errorf("recipients --status BOUNCED: %+v, want %s only", bounced, bob)
	}
	st = readHTTPState(t, e, id)
	if s := st.Campaign.Stats; s.Bounced != 1 || s.Sent != int64(len(emails))-1 || s.Total != int64(len(emails)) {
		t.Errorf("stats after the bounce: %+v, want 1 bounced, %d sent", s, len(emails)-1)
	}
	srcs := map[string]core.SuppressionSource{}
	for _, s := range st.Suppressed {
		srcs[s.Email] = s.Source
	}
	if len(srcs) != 2 || srcs[bob] != "bounce" || srcs[ann] != "unsubscribe" {
		t.Errorf("suppression list after the bounce: %+v, want %s (bounce) and %s (unsubscribe)", st.Suppressed, bob, ann)
	}

	// The same post again (SendGrid retries): a duplicate, nothing changes.
	before = st
	r = p.do("POST", "/webhooks/sendgrid", signer.headers(t, ts, bounce), bounce)
	p.wantStatus("replayed webhook", r, http.StatusOK)
	wr = web.WebhookResult{}
	p.decode("replayed webhook", r, &wr)
	if wr != (web.WebhookResult{EventsResult: core.EventsResult{Duplicates: 1}, Ignored: 1}) {
		t.Errorf("replayed webhook answer %+v, want 1 duplicate", wr)
	}
	before.unchanged(t, "the replayed webhook", readHTTPState(t, e, id))

	// Refused posts: bad signatures (403), malformed bodies (400).
	cat := "cat@example.org"
	catBounce := fmt.Sprintf(`[{"email":%q,"timestamp":%d,"event":"bounce","type":"bounce","sg_event_id":"sg-evt-bounce-2","campaign_id":"%d","recipient_id":"%d"}]`,
		cat, ts.Unix(), id, rid[cat])
	other := newWebhookSigner(t)
	stale := signer.headers(t, ts.Add(-72*time.Hour), catBounce)
	tampered := signer.headers(t, ts, catBounce)
	tampered["X-Twilio-Email-Event-Webhook-Timestamp"] = strconv.FormatInt(ts.Unix()+1, 10)
	for what, h := range map[string]map[string]string{
		"unsigned":                  {"Content-Type": "application/json"},
		"signed by another key":     other.headers(t, ts, catBounce),
		"signature of other body":   signer.headers(t, ts, bounce),
		"timestamp changed":         tampered,
		"signed three days ago":     stale,
		"signature not base64":      {"X-Twilio-Email-Event-Webhook-Signature": "%%%", "X-Twilio-Email-Event-Webhook-Timestamp": strconv.FormatInt(ts.Unix(), 10)},
		"timestamp not a unix time": {"X-Twilio-Email-Event-Webhook-Signature": tampered["X-Twilio-Email-Event-Webhook-Signature"], "X-Twilio-Email-Event-Webhook-Timestamp": "yesterday"},
	} {
		if r := p.do("POST", "/webhooks/sendgrid", h, catBounce); r.Status != http.StatusForbidden {
			t.Errorf("webhook %s: %d, want 403\n%s", what, r.Status, r.Body)
		}
	}
	for what, body := range map[string]string{
		"malformed JSON":   `[{"event":"bounce","sg_event_id":"x",`,
		"not an array":     `{"event":"bounce","sg_event_id":"sg-evt-obj","email":"cat@example.org"}`,
		"trailing garbage": catBounce + "]",
	} {
		if r := p.do("POST", "/webhooks/sendgrid", signer.headers(t, ts, body), body); r.Status != http.StatusBadRequest {
			t.Errorf("webhook with %s: %d, want 400\n%s", what, r.Status, r.Body)
		}
	}
	// An event for a recipient campaignd does not know: 200, ignored.
	unknown := fmt.Sprintf(`[{"email":"nobody@example.org","timestamp":%d,"event":"bounce","type":"bounce","sg_event_id":"sg-evt-unknown-1","campaign_id":"%d","recipient_id":"999999"}]`, ts.Unix(), id)
	r = p.do("POST", "/webhooks/sendgrid", signer.headers(t, ts, unknown), unknown)
	p.wantStatus("webhook for an unknown recipient", r, http.StatusOK)
	wr = web.WebhookResult{}
	p.decode("unknown-recipient webhook", r, &wr)
	if wr != (web.WebhookResult{EventsResult: core.EventsResult{Unknown: 1}}) {
		t.Errorf("unknown-recipient webhook answer %+v, want unknown 1", wr)
	}
	before.unchanged(t, "refused webhooks and the unknown recipient's event", readHTTPState(t, e, id))

	if err := d.Stop(); err != nil {
		t.Errorf("daemon stop: %v\n%s", err, d.Stderr())
	}
	if log := d.Stderr(); strings.Contains(log, cronSecret) || strings.Contains(log, unsubSecret) || strings.Contains(log, sig) {
		t.Errorf("the daemon's log shows a secret or an unsubscribe token:\n%s", log)
	}
}
