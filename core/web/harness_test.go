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
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/sqlite"
	"github.com/campaignd/campaignd/core/web"
	"github.com/campaignd/campaignd/sdk"
)

var ctx = context.Background()

// *core.Engine is what the daemon hands web.New.
var _ web.Backend = (*core.Engine)(nil)

// fakeSender accepts every message and keeps it.
type fakeSender struct {
	mu   sync.Mutex
	sent []*sdk.Message
}

func (f *fakeSender) Configure(context.Context, map[string]string) error { return nil }
func (f *fakeSender) Info(context.Context) (sdk.Info, error)             { return sdk.Info{Name: "fake"}, nil }
func (f *fakeSender) Send(_ context.Context, m *sdk.Message) (*sdk.Receipt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, m)
	return &sdk.Receipt{ProviderID: "p-" + m.MessageID}, nil
}

func (f *fakeSender) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

// message returns the message sent to a recipient.
func (f *fakeSender) message(rid int64) *sdk.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.sent {
		if m.RecipientID == rid {
			return m
		}
	}
	return nil
}

type fakeProvider struct{ senders map[string]sdk.Sender }

func (p *fakeProvider) Sender(_ context.Context, name string) (sdk.Sender, error) {
	return p.senders[name], nil
}
func (p *fakeProvider) Has(name string) bool { _, ok := p.senders[name]; return ok }

const (
	unsubSecret = "unsubscribe-secret-0123456789"
	cronSecret  = "cron-secret-0123456789abcdef"
)

// env is a real engine on a real SQLite file behind a real web.Server on
// 127.0.0.1:0.
type env struct {
	t      *testing.T
	eng    *core.Engine
	sender *fakeSender
	unsub  *core.Unsubscriber
	key    *ecdsa.PrivateKey // the "SendGrid" signing key
	srv    *web.Server
	base   string // http://127.0.0.1:port
}

// options for newEnv.
type options struct {
	signed  bool // configure SendGridPublicKey
	noUnsub bool // no Unsubscriber
	noCron  bool // no CronSecret
	maxBody int64
}

func newEnv(t *testing.T, o options) *env {
	t.Helper()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{t: t, sender: &fakeSender{}}
	if e.unsub, err = core.NewUnsubscriber(unsubSecret, "http://placeholder"); err != nil {
		t.Fatal(err)
	}
	lim := core.DefaultLimits()
	lim.RetryBase, lim.RetryMax = 0, 0
	lim.TickTimeout = 10 * time.Second
	prov := &fakeProvider{senders: map[string]sdk.Sender{"fake": e.sender}}
	// The URL is only known once the server listens.
	e.eng, err = core.NewEngine(db, prov, lim, hclog.NewNullLogger(), core.WithUnsubscribeURL(
		func(c *core.Campaign, r *core.Recipient) string {
			return e.base + "/unsubscribe/" + e.unsub.Token(c.ID, r.ID)
		}))
	if err != nil {
		t.Fatal(err)
	}
	cfg := web.Config{Listen: "127.0.0.1:0", MaxBodyBytes: o.maxBody, Logger: hclog.NewNullLogger()}
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
	if e.srv, err = web.New(e.eng, cfg); err != nil {
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

// campaign creates a campaign with n recipients, activates it and, when
// execute is set, executes it.
func (e *env) campaign(n int, execute bool) int64 {
	e.t.Helper()
	c, err := e.eng.CreateCampaign(ctx, core.CampaignSpec{Name: "c", Sender: "fake", From: "news@example.org", Subject: "Hi", Text: "Hello {{.Email}}"})
	if err != nil {
		e.t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("email,name\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "u%d@c%d.example.org,User %d\n", i, c.ID, i)
	}
	if _, err := e.eng.ImportRecipients(ctx, c.ID, core.FormatCSV, strings.NewReader(b.String())); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.eng.ChangeCampaign(ctx, c.ID, core.ActionActivate); err != nil {
		e.t.Fatal(err)
	}
	if execute {
		if res, err := e.eng.Execute(ctx, c.ID); err != nil || res.Queued != int64(n) {
			e.t.Fatalf("execute: %+v %v", res, err)
		}
	}
	return c.ID
}

// sentCampaign is a campaign whose n recipients are all SENT.
func (e *env) sentCampaign(n int) (int64, []*core.Recipient) {
	e.t.Helper()
	id := e.campaign(n, true)
	if res, err := e.eng.Tick(ctx, core.TriggerCLI); err != nil || res.Sent != n {
		e.t.Fatalf("tick: %+v %v", res, err)
	}
	rs := e.recipients(id, core.RecipientSent)
	if len(rs) != n {
		e.t.Fatalf("%d sent recipients, want %d", len(rs), n)
	}
	return id, rs
}

func (e *env) recipients(id int64, st core.RecipientStatus) []*core.Recipient {
	e.t.Helper()
	rs, err := e.eng.Recipients(ctx, id, core.RecipientFilter{Status: st, Limit: 10000})
	if err != nil {
		e.t.Fatal(err)
	}
	return rs
}

func (e *env) stats(id int64) core.Stats {
	e.t.Helper()
	st, err := e.eng.Stats(ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return *st
}

func (e *env) suppressions() []*core.Suppression {
	e.t.Helper()
	s, err := e.eng.Suppressions(ctx, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// snapshot is the state a refused request must leave alone.
type snapshot struct {
	stats core.Stats
	supp  int
	sent  int
}

func (e *env) snap(id int64) snapshot {
	return snapshot{stats: e.stats(id), supp: len(e.suppressions()), sent: e.sender.count()}
}

func (e *env) unchanged(id int64, before snapshot) {
	e.t.Helper()
	if now := e.snap(id); now != before {
		e.t.Fatalf("state changed: before %+v, after %+v", before, now)
	}
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

// errorCode returns the code of a JSON error answer.
func (r response) errorCode(t *testing.T) string {
	t.Helper()
	var er web.ErrorResponse
	r.json(t, &er)
	if er.Error.Code == "" || er.Error.Message == "" {
		t.Fatalf("not an error answer: %s", r.body)
	}
	return er.Error.Code
}

// do sends a request; url may be a path under the server.
func (e *env) do(method, url string, header http.Header, body []byte) response {
	e.t.Helper()
	if strings.HasPrefix(url, "/") {
		url = e.base + url
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		e.t.Fatal(err)
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

// sgEvent is one SendGrid event as the webhook posts it.
func sgEvent(event, id string, r *core.Recipient, extra map[string]any) map[string]any {
	ev := map[string]any{
		"event": event, "sg_event_id": id, "email": r.Email, "timestamp": time.Now().Unix(),
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

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
