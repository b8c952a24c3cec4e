package web_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/web"
)

// webhookResult decodes a 200 webhook answer, refusing unknown fields.
func webhookResult(t *testing.T, res response) web.WebhookResult {
	t.Helper()
	if res.status != http.StatusOK || res.header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d (%s): %s", res.status, res.header.Get("Content-Type"), res.body)
	}
	if k := res.keys(t); k != "applied,duplicates,ignored,skipped,unknown" {
		t.Fatalf("answer keys %s: %s", k, res.body)
	}
	var got web.WebhookResult
	res.json(t, &got)
	return got
}

func TestSignedWebhookHandsEventsOn(t *testing.T) {
	e := newEnv(t, options{signed: true})
	rs := e.recipients(5)
	stranger := &core.Recipient{ID: 99999, CampaignID: 7, Email: "nobody@example.org"}
	body := mustJSON(t, []any{
		sgEvent("processed", "ev-0", rs[0], nil), // not acted on
		sgEvent("bounce", "ev-1", rs[0], map[string]any{"type": "bounce", "status": "5.1.1", "reason": "550 5.1.1 no such user"}),
		// Custom args as numbers work too.
		sgEvent("spamreport", "ev-2", rs[1], map[string]any{"campaign_id": 7, "recipient_id": rs[1].ID}),
		sgEvent("unsubscribe", "ev-3", rs[2], nil),
		sgEvent("delivered", "ev-4", rs[3], map[string]any{"response": "250 OK"}),
		sgEvent("bounce", "", rs[4], map[string]any{"sg_event_id": nil}), // no id: skipped
		sgEvent("bounce", "ev-5", stranger, nil),                         // the engine decides it is unknown
		"not an event",                                                   // skipped
	})
	want := []core.DeliveryEvent{
		wantEvent(core.EventBounce, "ev-1", rs[0], "550 5.1.1 no such user"),
		wantEvent(core.EventSpamReport, "ev-2", rs[1], ""),
		wantEvent(core.EventUnsubscribe, "ev-3", rs[2], ""),
		wantEvent(core.EventDelivered, "ev-4", rs[3], "250 OK"),
		wantEvent(core.EventBounce, "ev-5", stranger, ""),
	}
	// The answer is what the engine did plus what the webhook left out.
	e.fake.set(func(f *fakeBackend) { f.events = &core.EventsResult{Applied: 4, Unknown: 1} })
	got := webhookResult(t, e.do("POST", "/webhooks/sendgrid", signedHeader(t, e.key, time.Now(), body), body))
	if w := (web.WebhookResult{EventsResult: core.EventsResult{Applied: 4, Unknown: 1}, Ignored: 1, Skipped: 2}); got != w {
		t.Fatalf("result %+v, want %+v", got, w)
	}
	e.fake.expectCall(t, "ApplyEvents", want)

	// SendGrid retrying the same batch (freshly signed) hands the same
	// events on: deduplicating them is the engine's job.
	e.fake.set(func(f *fakeBackend) { f.events = &core.EventsResult{Duplicates: 4, Unknown: 1} })
	got = webhookResult(t, e.do("POST", "/webhooks/sendgrid", signedHeader(t, e.key, time.Now(), body), body))
	if w := (web.WebhookResult{EventsResult: core.EventsResult{Duplicates: 4, Unknown: 1}, Ignored: 1, Skipped: 2}); got != w {
		t.Fatalf("replay result %+v, want %+v", got, w)
	}
	e.fake.expectCall(t, "ApplyEvents", want)
}

func TestWebhookRefusesBadSignatures(t *testing.T) {
	e := newEnv(t, options{signed: true})
	rs := e.recipients(2)
	body := mustJSON(t, []any{sgEvent("bounce", "ev-1", rs[0], nil)})
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tampered := bytes.Replace(body, []byte("ev-1"), []byte("ev-2"), 1)
	good := signedHeader(t, e.key, time.Now(), body)
	otherTS := good.Clone()
	otherTS.Set(web.TimestampHeader, fmt.Sprint(time.Now().Unix()+1))
	notB64 := good.Clone()
	notB64.Set(web.SignatureHeader, "!!!")
	notTime := good.Clone()
	notTime.Set(web.TimestampHeader, "yesterday")
	cases := map[string]struct {
		h    http.Header
		body []byte
	}{
		"unsigned":           {http.Header{"Content-Type": {"application/json"}}, body},
		"no timestamp":       {http.Header{web.SignatureHeader: good[web.SignatureHeader]}, body},
		"no signature":       {http.Header{web.TimestampHeader: good[web.TimestampHeader]}, body},
		"other key":          {signedHeader(t, other, time.Now(), body), body},
		"tampered body":      {good, tampered},
		"other timestamp":    {otherTS, body},
		"signature garbage":  {notB64, body},
		"timestamp not time": {notTime, body},
		"stale":              {signedHeader(t, e.key, time.Now().Add(-49*time.Hour), body), body},
		"future":             {signedHeader(t, e.key, time.Now().Add(10*time.Minute), body), body},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			res := e.do("POST", "/webhooks/sendgrid", c.h, c.body)
			if res.status != http.StatusForbidden || res.errorCode(t) != core.EFORBIDDEN {
				t.Fatalf("status %d: %s", res.status, res.body)
			}
			e.fake.expectNoCalls(t)
		})
	}
	// The genuine one works, and a day-old signature (a late SendGrid
	// retry) is accepted, as is one a little in the future (clock skew).
	for name, at := range map[string]time.Time{
		"now":     time.Now(),
		"day-old": time.Now().Add(-23 * time.Hour),
		"skewed":  time.Now().Add(time.Minute),
	} {
		got := webhookResult(t, e.do("POST", "/webhooks/sendgrid", signedHeader(t, e.key, at, body), body))
		if got != (web.WebhookResult{EventsResult: core.EventsResult{Applied: 1}}) {
			t.Fatalf("%s: %+v", name, got)
		}
		e.fake.expectCall(t, "ApplyEvents", []core.DeliveryEvent{wantEvent(core.EventBounce, "ev-1", rs[0], "")})
	}
}

func TestUnsignedWebhookWithoutKey(t *testing.T) {
	e := newEnv(t, options{})
	rs := e.recipients(1)
	body := mustJSON(t, []any{sgEvent("dropped", "ev-1", rs[0], map[string]any{"reason": "Bounced Address"})})
	// Without a key, signature headers (even garbage) are not looked at.
	for _, h := range []http.Header{{"Content-Type": {"application/json"}}, {web.SignatureHeader: {"!!!"}, web.TimestampHeader: {"x"}}} {
		got := webhookResult(t, e.do("POST", "/webhooks/sendgrid", h, body))
		if got != (web.WebhookResult{EventsResult: core.EventsResult{Applied: 1}}) {
			t.Fatalf("result %+v", got)
		}
		e.fake.expectCall(t, "ApplyEvents", []core.DeliveryEvent{wantEvent(core.EventDropped, "ev-1", rs[0], "Bounced Address")})
	}
}

func TestMalformedWebhookCallsNothing(t *testing.T) {
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprint("signed=", signed), func(t *testing.T) {
			e := newEnv(t, options{signed: signed})
			rs := e.recipients(2)
			valid := mustJSON(t, sgEvent("bounce", "ev-1", rs[0], nil))
			bodies := map[string][]byte{
				"truncated":     append(append([]byte("["), valid...), []byte(`, {"event": "bounce", "sg_event_id": "ev-2"`)...),
				"trailing data": append(append(append([]byte("["), valid...), ']'), []byte(" x")...),
				"two arrays":    []byte("[] []"),
				"object":        valid,
				"null":          []byte("null"),
				"string":        []byte(`"[]"`),
				"empty":         {},
				"blank":         []byte(" \n"),
			}
			for name, body := range bodies {
				h := http.Header{"Content-Type": {"application/json"}}
				if signed {
					h = signedHeader(t, e.key, time.Now(), body)
				}
				res := e.do("POST", "/webhooks/sendgrid", h, body)
				if res.status != http.StatusBadRequest || res.errorCode(t) != core.EINVALID {
					t.Fatalf("%s: status %d: %s", name, res.status, res.body)
				}
				e.fake.expectNoCalls(t)
			}
		})
	}
}

func TestWebhookBlockedBounceAndIDFallback(t *testing.T) {
	e := newEnv(t, options{})
	rs := e.recipients(2)
	body := mustJSON(t, []any{
		// A "blocked" bounce is the receiver refusing the sender, not the
		// address: recorded only, as deferred.
		sgEvent("bounce", "ev-1", rs[0], map[string]any{"type": "blocked", "reason": "IP blocklisted"}),
		// Without recipient_id the engine finds the address within the
		// campaign: the id is handed on as 0.
		sgEvent("spamreport", "ev-2", rs[1], map[string]any{"recipient_id": nil}),
		// Ids of another application sharing the account become 0.
		sgEvent("bounce", "ev-3", rs[1], map[string]any{"campaign_id": "abc", "recipient_id": "x", "email": "z@example.org"}),
	})
	fallback := wantEvent(core.EventSpamReport, "ev-2", rs[1], "")
	fallback.RecipientID = 0
	foreign := wantEvent(core.EventBounce, "ev-3", rs[1], "")
	foreign.CampaignID, foreign.RecipientID, foreign.Email = 0, 0, "z@example.org"
	e.fake.set(func(f *fakeBackend) { f.events = &core.EventsResult{Applied: 2, Unknown: 1} })
	got := webhookResult(t, e.do("POST", "/webhooks/sendgrid", nil, body))
	if got != (web.WebhookResult{EventsResult: core.EventsResult{Applied: 2, Unknown: 1}}) {
		t.Fatalf("result %+v", got)
	}
	e.fake.expectCall(t, "ApplyEvents", []core.DeliveryEvent{
		wantEvent(core.EventDeferred, "ev-1", rs[0], "IP blocklisted"), fallback, foreign,
	})
}

// TestWebhookEventFields checks how each SendGrid field becomes part of
// the core event, one event per case.
func TestWebhookEventFields(t *testing.T) {
	e := newEnv(t, options{})
	// 601 bytes whose 501st is mid-rune: cut to 499.
	long := "x" + strings.Repeat("é", 300)
	cases := []struct {
		name string
		ev   string
		want core.DeliveryEvent // zero Provider: the event is not handed on
		res  web.WebhookResult
	}{
		{"group unsubscribe", `{"event":"group_unsubscribe","sg_event_id":"a"}`,
			core.DeliveryEvent{Type: core.EventGroupUnsubscribe, EventID: "a"}, web.WebhookResult{}},
		{"deferred", `{"event":"deferred","sg_event_id":"a","response":"451 try later"}`,
			core.DeliveryEvent{Type: core.EventDeferred, EventID: "a", Reason: "451 try later"}, web.WebhookResult{}},
		{"open", `{"event":"open","sg_event_id":"a"}`, core.DeliveryEvent{Type: core.EventOpen, EventID: "a"}, web.WebhookResult{}},
		{"click", `{"event":"click","sg_event_id":"a"}`, core.DeliveryEvent{Type: core.EventClick, EventID: "a"}, web.WebhookResult{}},
		{"ids as strings", `{"event":"bounce","sg_event_id":"a","campaign_id":"7","recipient_id":"42"}`,
			core.DeliveryEvent{Type: core.EventBounce, EventID: "a", CampaignID: 7, RecipientID: 42}, web.WebhookResult{}},
		{"ids as floats", `{"event":"bounce","sg_event_id":"a","campaign_id":7.0,"recipient_id":"42.0"}`,
			core.DeliveryEvent{Type: core.EventBounce, EventID: "a", CampaignID: 7, RecipientID: 42}, web.WebhookResult{}},
		{"negative and huge ids", `{"event":"bounce","sg_event_id":"a","campaign_id":"-5","recipient_id":"1e300"}`,
			core.DeliveryEvent{Type: core.EventBounce, EventID: "a"}, web.WebhookResult{}},
		{"trimmed", `{"event":"bounce","sg_event_id":"  a  ","email":"  Ann@Example.org ","reason":"  full  "}`,
			core.DeliveryEvent{Type: core.EventBounce, EventID: "a", Email: "Ann@Example.org", Reason: "full"}, web.WebhookResult{}},
		{"timestamp as string", `{"event":"bounce","sg_event_id":"a","timestamp":"1700000000"}`,
			core.DeliveryEvent{Type: core.EventBounce, EventID: "a", At: sgAt}, web.WebhookResult{}},
		{"timestamp not positive", `{"event":"bounce","sg_event_id":"a","timestamp":-1}`,
			core.DeliveryEvent{Type: core.EventBounce, EventID: "a"}, web.WebhookResult{}},
		{"status before reason", `{"event":"bounce","sg_event_id":"a","status":"5.1.1","reason":"no such user"}`,
			core.DeliveryEvent{Type: core.EventBounce, EventID: "a", Reason: "5.1.1 no such user"}, web.WebhookResult{}},
		{"status alone", `{"event":"bounce","sg_event_id":"a","status":5}`,
			core.DeliveryEvent{Type: core.EventBounce, EventID: "a", Reason: "5"}, web.WebhookResult{}},
		{"reason over response", `{"event":"bounce","sg_event_id":"a","reason":"r","response":"x"}`,
			core.DeliveryEvent{Type: core.EventBounce, EventID: "a", Reason: "r"}, web.WebhookResult{}},
		{"reason of another type", `{"event":"bounce","sg_event_id":"a","reason":{"x":1}}`,
			core.DeliveryEvent{Type: core.EventBounce, EventID: "a"}, web.WebhookResult{}},
		{"long reason", `{"event":"bounce","sg_event_id":"a","reason":"` + long + `"}`,
			core.DeliveryEvent{Type: core.EventBounce, EventID: "a", Reason: long[:499]}, web.WebhookResult{}},
		{"ignored type", `{"event":"processed","sg_event_id":"a"}`, core.DeliveryEvent{}, web.WebhookResult{Ignored: 1}},
		{"ignored resubscribe", `{"event":"group_resubscribe","sg_event_id":"a"}`, core.DeliveryEvent{}, web.WebhookResult{Ignored: 1}},
		{"blank id", `{"event":"bounce","sg_event_id":"  "}`, core.DeliveryEvent{}, web.WebhookResult{Skipped: 1}},
		{"wrong field type", `{"event":5,"sg_event_id":"a"}`, core.DeliveryEvent{}, web.WebhookResult{Skipped: 1}},
		{"not an object", `[{"event":"bounce","sg_event_id":"a"}]`, core.DeliveryEvent{}, web.WebhookResult{Skipped: 1}},
		{"null", `null`, core.DeliveryEvent{}, web.WebhookResult{Skipped: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := webhookResult(t, e.do("POST", "/webhooks/sendgrid", nil, []byte("["+c.ev+"]")))
			if c.want.Type == "" {
				if got != c.res {
					t.Fatalf("result %+v, want %+v", got, c.res)
				}
				e.fake.expectNoCalls(t)
				return
			}
			if got != (web.WebhookResult{EventsResult: core.EventsResult{Applied: 1}}) {
				t.Fatalf("result %+v", got)
			}
			c.want.Provider = web.ProviderSendGrid
			e.fake.expectCall(t, "ApplyEvents", []core.DeliveryEvent{c.want})
		})
	}
	// An empty batch, or one with nothing to hand on, reaches no engine.
	for _, body := range []string{`[]`, ` [ ] `, `[{"event":"processed","sg_event_id":"a"},1,{}]`} {
		got := webhookResult(t, e.do("POST", "/webhooks/sendgrid", nil, []byte(body)))
		if got.Applied+got.Duplicates+got.Unknown != 0 {
			t.Fatalf("%s: %+v", body, got)
		}
		e.fake.expectNoCalls(t)
	}
}

func TestWebhookApplyFailure(t *testing.T) {
	e := newEnv(t, options{})
	rs := e.recipients(1)
	body := mustJSON(t, []any{sgEvent("bounce", "ev-1", rs[0], nil)})
	// A failure is not a 2xx, so SendGrid retries the whole batch; an
	// internal failure's detail stays in the log.
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{core.Errorf(core.EUNAVAILABLE, "database is read-only"), http.StatusServiceUnavailable, core.EUNAVAILABLE},
		{errors.New("sqlite: disk I/O error"), http.StatusInternalServerError, core.EINTERNAL},
	} {
		e.fake.set(func(f *fakeBackend) { f.err = c.err })
		res := e.do("POST", "/webhooks/sendgrid", nil, body)
		if res.status != c.status || res.errorCode(t) != c.code {
			t.Fatalf("%v: %d %s", c.err, res.status, res.body)
		}
		if strings.Contains(string(res.body), "sqlite") {
			t.Fatalf("internal detail shown: %s", res.body)
		}
		e.fake.expectCall(t, "ApplyEvents", []core.DeliveryEvent{wantEvent(core.EventBounce, "ev-1", rs[0], "")})
	}
}

func TestWebhookBodyLimit(t *testing.T) {
	e := newEnv(t, options{maxBody: 1024})
	rs := e.recipients(1)
	var evs []any
	for i := 0; i < 20; i++ {
		evs = append(evs, sgEvent("bounce", fmt.Sprint("ev-", i), rs[0], nil))
	}
	body := mustJSON(t, evs)
	// Without a Content-Length (chunked), the limit holds while reading.
	e.both("POST", "/webhooks/sendgrid", nil, body, func(what string, res response) {
		if res.status != http.StatusRequestEntityTooLarge || res.errorCode(t) != core.ETOOLARGE {
			t.Fatalf("%s: status %d: %s", what, res.status, res.body)
		}
		e.fake.expectNoCalls(t)
	})
	// A body of exactly the limit is read.
	one := mustJSON(t, []any{sgEvent("bounce", "ev-1", rs[0], nil)})
	padded := append(one, bytes.Repeat([]byte(" "), 1024-len(one))...)
	e.both("POST", "/webhooks/sendgrid", nil, padded, func(what string, res response) {
		if got := webhookResult(t, res); got.Applied != 1 {
			t.Fatalf("%s: %+v", what, got)
		}
		e.fake.expectCall(t, "ApplyEvents", []core.DeliveryEvent{wantEvent(core.EventBounce, "ev-1", rs[0], "")})
	})
}

func TestSendGridPublicKeyFormats(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	b64 := base64.StdEncoding.EncodeToString(der)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	for _, ok := range []string{b64, b64[:20] + "\n" + b64[20:] + "\n", pemKey} {
		if _, err := web.ParseSendGridPublicKey(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	for _, bad := range []string{"not base64!", base64.StdEncoding.EncodeToString([]byte("junk")),
		base64.StdEncoding.EncodeToString(rsaDER), base64.StdEncoding.EncodeToString(p384DER)} {
		if _, err := web.ParseSendGridPublicKey(bad); core.ErrorCode(err) != core.EINVALID {
			t.Errorf("%q: %v, want invalid", bad, err)
		}
	}
	if _, err := web.New(&fakeBackend{}, web.Config{Listen: "127.0.0.1:0", SendGridPublicKey: "junk"}); core.ErrorCode(err) != core.EINVALID {
		t.Fatalf("New with a bad key: %v", err)
	}
}

// TestUnsignedWebhookRefusedByDefault is issue 12 item 1: without a
// public key, unsigned posts are refused unless the operator opted in,
// and the route does not exist at all without a SendGrid sender.
func TestUnsignedWebhookRefusedByDefault(t *testing.T) {
	e := newEnv(t, options{refuseUnsigned: true})
	rs := e.recipients(1)
	body := mustJSON(t, []any{sgEvent("bounce", "1", rs[0], map[string]any{"type": "bounce", "status": "5.1.1"})})
	res := e.do("POST", "/webhooks/sendgrid", http.Header{"Content-Type": {"application/json"}}, body)
	if res.status != http.StatusForbidden || res.errorCode(t) != core.EFORBIDDEN || !strings.Contains(string(res.body), "sendgrid_public_key") {
		t.Fatalf("unsigned post without the opt-in: %d %s", res.status, res.body)
	}
	e.fake.expectNoCalls(t)

	off := newEnv(t, options{noWebhook: true})
	if res := off.do("POST", "/webhooks/sendgrid", http.Header{"Content-Type": {"application/json"}}, body); res.status != http.StatusNotFound {
		t.Fatalf("webhook without a SendGrid sender: %d %s, want 404", res.status, res.body)
	}
	off.fake.expectNoCalls(t)

	if _, err := web.New(&fakeBackend{}, web.Config{Listen: "127.0.0.1:0", SendGridWebhook: true, SendGridUnsigned: true,
		SendGridPublicKey: publicKeyB64(t, e.key)}); core.ErrorCode(err) != core.EINVALID {
		t.Fatalf("unsigned opt-in with a key: %v, want EINVALID", err)
	}
}

// TestWebhookBoundsTextFields: an over-long sg_event_id or email is
// skipped, a long reason cut, so a post cannot store megabytes per event.
func TestWebhookBoundsTextFields(t *testing.T) {
	e := newEnv(t, options{signed: true})
	rs := e.recipients(2)
	long := &core.Recipient{ID: rs[1].ID, CampaignID: 7, Email: strings.Repeat("a", 400) + "@example.org"}
	body := mustJSON(t, []any{
		sgEvent("bounce", strings.Repeat("i", 129), rs[0], nil),
		sgEvent("bounce", "ev-2", long, nil),
		sgEvent("dropped", "ev-3", rs[0], map[string]any{"reason": strings.Repeat("r", 100000)}),
	})
	e.fake.set(func(f *fakeBackend) { f.events = &core.EventsResult{Applied: 1} })
	got := webhookResult(t, e.do("POST", "/webhooks/sendgrid", signedHeader(t, e.key, time.Now(), body), body))
	if got.Skipped != 2 || got.Applied != 1 {
		t.Fatalf("result %+v, want 2 skipped, 1 applied", got)
	}
	e.fake.expectCall(t, "ApplyEvents", []core.DeliveryEvent{wantEvent(core.EventDropped, "ev-3", rs[0], strings.Repeat("r", 500))})
}

// publicKeyB64 is key's public half as sendgrid_public_key takes it.
func publicKeyB64(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}
