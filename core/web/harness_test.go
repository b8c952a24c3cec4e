package web_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/web"
)

var ctx = context.Background()

const (
	unsubSecret = "unsubscribe-secret-0123456789"
	cronSecret  = "cron-secret-0123456789abcdef"
)

// env is a fake backend behind a real web.Server on 127.0.0.1:0, spoken
// to by a real HTTP client.
type env struct {
	t     *testing.T
	fake  *fakeBackend
	unsub *core.Unsubscriber
	key   *ecdsa.PrivateKey // the "SendGrid" signing key
	srv   *web.Server
	base  string // http://127.0.0.1:port
}

// options for newEnv.
type options struct {
	signed bool // configure SendGridPublicKey
	// refuseUnsigned leaves out the SendGridUnsigned opt-in an unsigned
	// env otherwise has.
	refuseUnsigned bool
	noWebhook      bool // no SendGrid sender: no webhook route
	noUnsub        bool // no Unsubscriber
	noCron         bool // no CronSecret
	maxBody        int64
}

func newEnv(t *testing.T, o options) *env {
	t.Helper()
	e := &env{t: t, fake: &fakeBackend{}}
	var err error
	if e.unsub, err = core.NewUnsubscriber(unsubSecret, "http://placeholder"); err != nil {
		t.Fatal(err)
	}
	cfg := web.Config{Listen: "127.0.0.1:0", MaxBodyBytes: o.maxBody, Logger: hclog.NewNullLogger(),
		SendGridWebhook: !o.noWebhook, SendGridUnsigned: !o.signed && !o.refuseUnsigned}
	if !o.noUnsub {
		cfg.Unsubscriber = e.unsub
	}
	if !o.noCron {
		cfg.CronSecret = cronSecret
	}
	if e.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if o.signed {
		der, err := x509.MarshalPKIXPublicKey(&e.key.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		cfg.SendGridPublicKey = base64.StdEncoding.EncodeToString(der)
	}
	if e.srv, err = web.New(e.fake, cfg); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Listen(); err != nil {
		t.Fatal(err)
	}
	e.base = "http://" + e.srv.Addr().String()
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve() }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := e.srv.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return e
}

// recipients returns n recipients of campaign 7 (ids 11, 12, ...), known
// to the fake's Unsubscribe.
func (e *env) recipients(n int) []*core.Recipient {
	e.t.Helper()
	rs := make([]*core.Recipient, n)
	known := map[int64]*core.Recipient{}
	for i := range rs {
		rs[i] = &core.Recipient{ID: int64(11 + i), CampaignID: 7, Email: fmt.Sprintf("u%d@c7.example.org", i), Status: core.RecipientSent}
		known[rs[i].ID] = rs[i]
	}
	e.fake.set(func(f *fakeBackend) { f.recipients = known })
	return rs
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

// keys returns the sorted top-level keys of a JSON object answer.
func (r response) keys(t *testing.T) string {
	t.Helper()
	var m map[string]json.RawMessage
	r.json(t, &m)
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

// errorCode returns the code of a JSON error answer, checking its shape.
func (r response) errorCode(t *testing.T) string {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error answer of type %q: %s", ct, r.body)
	}
	var er web.ErrorResponse
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&er); err != nil {
		t.Fatalf("decode error answer %q: %v", r.body, err)
	}
	if er.Error.Code == "" || er.Error.Message == "" {
		t.Fatalf("not an error answer: %s", r.body)
	}
	return er.Error.Code
}

// errorMessage returns the message of a JSON error answer.
func (r response) errorMessage(t *testing.T) string {
	t.Helper()
	var er web.ErrorResponse
	r.json(t, &er)
	return er.Error.Message
}

// do sends a request; url may be a path under the server.
func (e *env) do(method, url string, header http.Header, body []byte) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	return e.doReader(method, url, header, rd, int64(len(body)))
}

// doChunked sends body without a Content-Length (chunked encoding).
func (e *env) doChunked(method, url string, header http.Header, body []byte) response {
	e.t.Helper()
	// Hiding the *bytes.Reader keeps net/http from learning the length.
	return e.doReader(method, url, header, struct{ io.Reader }{bytes.NewReader(body)}, -1)
}

// both sends the request twice, with and without a Content-Length, and
// calls check with each answer right after it arrives.
func (e *env) both(method, url string, header http.Header, body []byte, check func(what string, res response)) {
	e.t.Helper()
	check("sized", e.do(method, url, header, body))
	check("chunked", e.doChunked(method, url, header, body))
}

func (e *env) doReader(method, url string, header http.Header, rd io.Reader, length int64) response {
	e.t.Helper()
	if strings.HasPrefix(url, "/") {
		url = e.base + url
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.ContentLength = length
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		e.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// signedHeader signs body exactly as SendGrid does: ECDSA P-256 over
// SHA-256(timestamp || body), ASN.1 DER, base64.
func signedHeader(t *testing.T, key *ecdsa.PrivateKey, at time.Time, body []byte) http.Header {
	t.Helper()
	ts := fmt.Sprint(at.Unix())
	digest := sha256.Sum256(append([]byte(ts), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return http.Header{
		"Content-Type":      {"application/json"},
		web.SignatureHeader: {base64.StdEncoding.EncodeToString(sig)},
		web.TimestampHeader: {ts},
	}
}

// sgTime is the timestamp sgEvent puts on events, and sgAt the time the
// webhook must hand on for it.
const sgTime = 1700000000

var sgAt = time.Unix(sgTime, 0).UTC()

// sgEvent is one SendGrid event about r as the webhook posts it; extra
// adds fields, or removes them when nil.
func sgEvent(event, id string, r *core.Recipient, extra map[string]any) map[string]any {
	ev := map[string]any{
		"event": event, "sg_event_id": id, "email": r.Email, "timestamp": sgTime,
		"sg_message_id": "m." + id, "campaign_id": fmt.Sprint(r.CampaignID), "recipient_id": fmt.Sprint(r.ID),
		"message_id": fmt.Sprintf("<c%d.r%d@example.org>", r.CampaignID, r.ID),
	}
	for k, v := range extra {
		if v == nil {
			delete(ev, k)
		} else {
			ev[k] = v
		}
	}
	return ev
}

// wantEvent is the core event the webhook must hand on for an sgEvent
// about r.
func wantEvent(typ core.EventType, id string, r *core.Recipient, reason string) core.DeliveryEvent {
	return core.DeliveryEvent{Provider: web.ProviderSendGrid, EventID: id, Type: typ, CampaignID: r.CampaignID,
		RecipientID: r.ID, Email: r.Email, Reason: reason, At: sgAt}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
