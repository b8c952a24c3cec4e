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
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/web"
)

func TestSignedWebhookAppliesEventsOnce(t *testing.T) {
	e := newEnv(t, options{signed: true})
	id, rs := e.sentCampaign(5)
	stranger := &core.Recipient{ID: 99999, CampaignID: id, Email: "nobody@example.org"}
	body := mustJSON(t, []any{
		sgEvent("processed", "ev-0", rs[0], nil), // not acted on
		sgEvent("bounce", "ev-1", rs[0], map[string]any{"type": "bounce", "status": "5.1.1", "reason": "550 5.1.1 no such user"}),
		// Custom args as numbers work too.
		sgEvent("spamreport", "ev-2", rs[1], map[string]any{"campaign_id": id, "recipient_id": rs[1].ID}),
		sgEvent("unsubscribe", "ev-3", rs[2], nil),
		sgEvent("delivered", "ev-4", rs[3], map[string]any{"response": "250 OK"}),
		sgEvent("bounce", "", rs[4], map[string]any{"sg_event_id": nil}), // no id: skipped
		sgEvent("bounce", "ev-5", stranger, nil),                         // unknown recipient
		"not an event",                                                   // skipped
	})
	res := e.do("POST", "/webhooks/sendgrid", signedHeader(t, e.key, time.Now(), body), body)
	if res.status != http.StatusOK {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	var got web.WebhookResult
	res.json(t, &got)
	want := web.WebhookResult{EventsResult: core.EventsResult{Applied: 4, Unknown: 1}, Ignored: 1, Skipped: 2}
	if got != want {
		t.Fatalf("result %+v, want %+v", got, want)
	}
	// The bounce moved a counter from sent to bounced.
	if st := e.stats(id); st.Sent != 4 || st.Bounced != 1 || st.Total != 5 {
		t.Fatalf("stats %+v", st)
	}
	b := e.recipients(id, core.RecipientBounced)
	if len(b) != 1 || b[0].ID != rs[0].ID || !strings.Contains(b[0].LastError, "5.1.1") {
		t.Fatalf("bounced %+v", b)
	}
	sources := map[string]string{}
	for _, s := range e.suppressions() {
		sources[s.Email] = s.Source
	}
	wantSup := map[string]string{rs[0].Email: "bounce", rs[1].Email: "complaint", rs[2].Email: "unsubscribe"}
	if fmt.Sprint(sources) != fmt.Sprint(wantSup) {
		t.Fatalf("suppressions %v, want %v", sources, wantSup)
	}

	// SendGrid retrying the same batch (freshly signed) changes nothing.
	before := e.snap(id)
	res = e.do("POST", "/webhooks/sendgrid", signedHeader(t, e.key, time.Now(), body), body)
	if res.status != http.StatusOK {
		t.Fatalf("replay status %d: %s", res.status, res.body)
	}
	res.json(t, &got)
	want = web.WebhookResult{EventsResult: core.EventsResult{Duplicates: 4, Unknown: 1}, Ignored: 1, Skipped: 2}
	if got != want {
		t.Fatalf("replay result %+v, want %+v", got, want)
	}
	e.unchanged(id, before)
}

func TestWebhookRefusesBadSignatures(t *testing.T) {
	e := newEnv(t, options{signed: true})
	id, rs := e.sentCampaign(2)
	body := mustJSON(t, []any{sgEvent("bounce", "ev-1", rs[0], nil)})
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tampered := bytes.Replace(body, []byte("ev-1"), []byte("ev-2"), 1)
	good := signedHeader(t, e.key, time.Now(), body)
	otherTS := good.Clone()
	otherTS.Set(web.TimestampHeader, fmt.Sprint(time.Now().Unix()+1))
	notB64 := good.Clone()
	notB64.Set(web.SignatureHeader, "!!!")
	cases := map[string]struct {
		h    http.Header
		body []byte
	}{
		"unsigned":          {http.Header{"Content-Type": {"application/json"}}, body},
		"no timestamp":      {http.Header{web.SignatureHeader: good[web.SignatureHeader]}, body},
		"other key":         {signedHeader(t, other, time.Now(), body), body},
		"tampered body":     {good, tampered},
		"other timestamp":   {otherTS, body},
		"signature garbage": {notB64, body},
		"stale":             {signedHeader(t, e.key, time.Now().Add(-49*time.Hour), body), body},
		"future":            {signedHeader(t, e.key, time.Now().Add(10*time.Minute), body), body},
	}
	before := e.snap(id)
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			res := e.do("POST", "/webhooks/sendgrid", c.h, c.body)
			if res.status != http.StatusForbidden || res.errorCode(t) != core.EFORBIDDEN {
				t.Fatalf("status %d: %s", res.status, res.body)
			}
			e.unchanged(id, before)
		})
	}
	// The genuine one still works, and a day-old signature (a late
	// SendGrid retry) is accepted.
	old := e.do("POST", "/webhooks/sendgrid", signedHeader(t, e.key, time.Now().Add(-23*time.Hour), body), body)
	if old.status != http.StatusOK {
		t.Fatalf("day-old signature: %d %s", old.status, old.body)
	}
	if st := e.stats(id); st.Bounced != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUnsignedWebhookWithoutKey(t *testing.T) {
	e := newEnv(t, options{})
	id, rs := e.sentCampaign(1)
	body := mustJSON(t, []any{sgEvent("dropped", "ev-1", rs[0], map[string]any{"reason": "Bounced Address"})})
	res := e.do("POST", "/webhooks/sendgrid", http.Header{"Content-Type": {"application/json"}}, body)
	if res.status != http.StatusOK {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	if st := e.stats(id); st.Bounced != 1 || st.Sent != 0 {
		t.Fatalf("stats %+v", st)
	}
	if s := e.suppressions(); len(s) != 1 || s[0].Source != "dropped" || !strings.Contains(s[0].Reason, "Bounced Address") {
		t.Fatalf("suppressions %+v", s)
	}
}

func TestMalformedWebhookAppliesNothing(t *testing.T) {
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprint("signed=", signed), func(t *testing.T) {
			e := newEnv(t, options{signed: signed})
			id, rs := e.sentCampaign(2)
			valid := mustJSON(t, sgEvent("bounce", "ev-1", rs[0], nil))
			bodies := map[string][]byte{
				"truncated":     append(append([]byte("["), valid...), []byte(`, {"event": "bounce", "sg_event_id": "ev-2"`)...),
				"trailing data": append(append(append([]byte("["), valid...), ']'), []byte(" x")...),
				"object":        valid,
				"null":          []byte("null"),
				"empty":         {},
			}
			before := e.snap(id)
			for name, body := range bodies {
				h := http.Header{"Content-Type": {"application/json"}}
				if signed {
					h = signedHeader(t, e.key, time.Now(), body)
				}
				res := e.do("POST", "/webhooks/sendgrid", h, body)
				if res.status != http.StatusBadRequest || res.errorCode(t) != core.EINVALID {
					t.Fatalf("%s: status %d: %s", name, res.status, res.body)
				}
				e.unchanged(id, before)
			}
		})
	}
}

func TestWebhookBlockedBounceAndIDFallback(t *testing.T) {
	e := newEnv(t, options{})
	id, rs := e.sentCampaign(2)
	body := mustJSON(t, []any{
		// "blocked" bounces count as bounces.
		sgEvent("bounce", "ev-1", rs[0], map[string]any{"type": "blocked", "reason": "IP blocklisted"}),
		// Without recipient_id the address within the campaign finds it.
		sgEvent("spamreport", "ev-2", rs[1], map[string]any{"recipient_id": nil}),
		// Ids of another application sharing the account do no harm.
		sgEvent("bounce", "ev-3", rs[1], map[string]any{"campaign_id": "abc", "recipient_id": "x", "email": "z@example.org"}),
	})
	res := e.do("POST", "/webhooks/sendgrid", nil, body)
	var got web.WebhookResult
	res.json(t, &got)
	if res.status != http.StatusOK || got.Applied != 2 || got.Unknown != 1 {
		t.Fatalf("status %d: %+v", res.status, got)
	}
	if st := e.stats(id); st.Bounced != 1 || st.Sent != 1 {
		t.Fatalf("stats %+v", st)
	}
	if n := len(e.suppressions()); n != 2 {
		t.Fatalf("%d suppressions, want 2", n)
	}
}

func TestWebhookBodyLimit(t *testing.T) {
	e := newEnv(t, options{maxBody: 1024})
	id, rs := e.sentCampaign(1)
	var evs []any
	for i := 0; i < 20; i++ {
		evs = append(evs, sgEvent("bounce", fmt.Sprint("ev-", i), rs[0], nil))
	}
	body := mustJSON(t, evs)
	before := e.snap(id)
	res := e.do("POST", "/webhooks/sendgrid", nil, body)
	if res.status != http.StatusRequestEntityTooLarge || res.errorCode(t) != core.ETOOLARGE {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	// Without a Content-Length (chunked), the limit holds while reading.
	req, _ := http.NewRequest("POST", e.base+"/webhooks/sendgrid", struct{ *bytes.Reader }{bytes.NewReader(body)})
	req.ContentLength = -1
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked: status %d", r2.StatusCode)
	}
	e.unchanged(id, before)
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
	e := newEnv(t, options{})
	if _, err := web.New(e.eng, web.Config{Listen: "127.0.0.1:0", SendGridPublicKey: "junk"}); core.ErrorCode(err) != core.EINVALID {
		t.Fatalf("New with a bad key: %v", err)
	}
}
