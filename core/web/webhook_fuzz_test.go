package web_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/web"
)

// FuzzSendGridWebhook posts arbitrary bodies to POST /webhooks/sendgrid
// through the server's real handler, unsigned and signed (a good
// signature, a signature over other bytes, a stale one). Invariants:
//   - never a 5xx, never a panic (the guard would answer 500);
//   - a body over the limit is 413, a forged or stale signature 403 (and
//     so is any post to a server with neither a key nor the unsigned
//     opt-in), a
//     body that is not one JSON array 400, each with a JSON error body,
//     and in every one of those cases nothing is applied;
//   - the backend is only ever asked to ApplyEvents (the fake answers
//     that every event it is handed was applied);
//   - a 200 accounts for every element of the array exactly once:
//     applied + duplicates + unknown + ignored + skipped = elements, with
//     exactly applied events handed to ApplyEvents in one call, and no
//     call at all when there is nothing to hand on;
//   - every event handed on is a sendgrid event with a known type, a
//     trimmed non-empty event id of at most 128 bytes, non-negative ids, a
//     trimmed email of at most 320 bytes and a reason of at most 500 bytes
//     of valid UTF-8.

const fuzzWebhookMax = 8 << 10

// Signing modes.
const (
	modeUnsigned  = iota // server without a key, no signature
	modeSigned           // good signature over timestamp + body
	modeForged           // signature over other bytes
	modeStale            // good signature, timestamp far too old
	modeUnsignedK        // server with a key, no signature headers
	modeRefused          // server without a key and without the unsigned opt-in
	numModes
)

var knownEventTypes = map[core.EventType]bool{
	core.EventBounce: true, core.EventDropped: true, core.EventSpamReport: true, core.EventUnsubscribe: true,
	core.EventGroupUnsubscribe: true, core.EventDelivered: true, core.EventDeferred: true, core.EventOpen: true,
	core.EventClick: true,
}

func FuzzSendGridWebhook(f *testing.F) {
	for _, s := range []string{
		`[{"email":"ann@example.org","event":"bounce","type":"bounce","status":"5.1.1","reason":"550 no such user","sg_event_id":"e1","timestamp":1700000000,"campaign_id":"7","recipient_id":"42"}]`,
		`[{"email":"ann@example.org","event":"delivered","sg_event_id":"e2","timestamp":"1700000000","campaign_id":7,"recipient_id":42.0}]`,
		`[{"event":"processed","sg_event_id":"e3"},{"event":"bounce"},1,"x",null,[],{"event":"open","sg_event_id":"  "}]`,
		`[{"event":"dropped","sg_event_id":"e4","campaign_id":"-5","recipient_id":"1e300","reason":{"x":1}}]`,
		`[{"event":"spamreport","sg_event_id":"e5","email":"  Ann@Example.org  ","timestamp":-1,"reason":"` + strings.Repeat("é", 400) + `"}]`,
		`[{"event":"unsubscribe","sg_event_id":"e6","email":"x\r\nBcc: y@example.net","campaign_id":9007199254740993}]`,
		`[{"event":5,"sg_event_id":"e7"}]`,
		`{"event":"bounce","sg_event_id":"e8"}`,
		`[{"event":"bounce","sg_event_id":"e9"}`,
		`[] []`,
		``,
		`null`,
		"[{\"event\":\"bounce\",\"sg_event_id\":\"\xff\xfe\",\"reason\":\"\xc3\"}]",
		`[` + strings.Repeat(`{"event":"open","sg_event_id":"x"},`, 300) + `{}]`,
		// Over-long text fields (issue 12): skipped, never stored whole.
		`[{"event":"bounce","sg_event_id":"` + strings.Repeat("i", 129) + `","email":"ann@example.org"},{"event":"bounce","sg_event_id":"e10","email":"` + strings.Repeat("a", 321) + `@example.org"}]`,
	} {
		for m := range uint8(numModes) {
			f.Add(s, m)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	unsignedB, signedB := &fakeBackend{}, &fakeBackend{}
	unsigned, err := web.New(unsignedB, web.Config{Listen: "127.0.0.1:0", MaxBodyBytes: fuzzWebhookMax,
		SendGridWebhook: true, SendGridUnsigned: true})
	if err != nil {
		f.Fatal(err)
	}
	signed, err := web.New(signedB, web.Config{Listen: "127.0.0.1:0", MaxBodyBytes: fuzzWebhookMax,
		SendGridWebhook: true, SendGridPublicKey: base64.StdEncoding.EncodeToString(der)})
	if err != nil {
		f.Fatal(err)
	}
	refusedB := &fakeBackend{}
	refused, err := web.New(refusedB, web.Config{Listen: "127.0.0.1:0", MaxBodyBytes: fuzzWebhookMax, SendGridWebhook: true})
	if err != nil {
		f.Fatal(err)
	}
	uh, sh, rh := unsigned.Handler(), signed.Handler(), refused.Handler()

	f.Fuzz(func(t *testing.T, body string, mode uint8) {
		mode %= numModes
		req := httptest.NewRequest("POST", "/webhooks/sendgrid", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h, b := sh, signedB
		switch mode {
		case modeUnsigned:
			h, b = uh, unsignedB
		case modeRefused:
			h, b = rh, refusedB
		}
		if mode != modeUnsigned && mode != modeUnsignedK && mode != modeRefused {
			at := time.Now()
			signedBytes := []byte(body)
			switch mode {
			case modeStale:
				at = at.Add(-72 * time.Hour)
			case modeForged:
				signedBytes = append([]byte("tampered"), signedBytes...)
			}
			ts := strconv.FormatInt(at.Unix(), 10)
			sum := sha256.Sum256(append([]byte(ts), signedBytes...))
			sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set(web.SignatureHeader, base64.StdEncoding.EncodeToString(sig))
			req.Header.Set(web.TimestampHeader, ts)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var batches [][]core.DeliveryEvent
		for _, c := range b.take() {
			evs, ok := c.Args[0].([]core.DeliveryEvent)
			if c.Method != "ApplyEvents" || !ok {
				t.Fatalf("the webhook called the backend's %s", describeCalls([]backendCall{c}))
			}
			batches = append(batches, evs)
		}
		st := rec.Code
		if st >= 500 {
			t.Fatalf("%d for %q: %s", st, body, rec.Body.String())
		}

		var wantStatus int
		var elems []json.RawMessage
		switch {
		case len(body) > fuzzWebhookMax:
			wantStatus = http.StatusRequestEntityTooLarge
		case mode == modeForged || mode == modeStale || mode == modeUnsignedK || mode == modeRefused:
			wantStatus = http.StatusForbidden
		case json.Unmarshal([]byte(body), &elems) != nil || !strings.HasPrefix(strings.TrimLeft(body, " \t\r\n"), "["):
			wantStatus = http.StatusBadRequest
		default:
			wantStatus = http.StatusOK
		}
		if st != wantStatus {
			t.Fatalf("mode %d: %d, want %d, for %q: %s", mode, st, wantStatus, body, rec.Body.String())
		}
		if st != http.StatusOK {
			var er struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &er); err != nil || er.Error.Code == "" {
				t.Fatalf("%d answer is not an error body: %q", st, rec.Body.String())
			}
			if len(batches) != 0 {
				t.Fatalf("a refused webhook (%d) applied events: %+v", st, batches)
			}
			return
		}

		var res web.WebhookResult
		dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&res); err != nil {
			t.Fatalf("200 answer %q: %v", rec.Body.String(), err)
		}
		if got := res.Applied + res.Duplicates + res.Unknown + res.Ignored + res.Skipped; got != len(elems) {
			t.Fatalf("answer %+v accounts for %d of %d elements", res, got, len(elems))
		}
		var handed []core.DeliveryEvent
		switch len(batches) {
		case 0:
		case 1:
			handed = batches[0]
			if len(handed) == 0 {
				t.Fatal("ApplyEvents called with no events")
			}
		default:
			t.Fatalf("%d ApplyEvents calls for one post", len(batches))
		}
		if len(handed) != res.Applied {
			t.Fatalf("%d events handed on, %d reported applied", len(handed), res.Applied)
		}
		for _, ev := range handed {
			if ev.Provider != web.ProviderSendGrid || !knownEventTypes[ev.Type] {
				t.Fatalf("event %+v: provider or type", ev)
			}
			if ev.EventID == "" || ev.EventID != strings.TrimSpace(ev.EventID) || len(ev.EventID) > 128 {
				t.Fatalf("event id %q", ev.EventID)
			}
			if ev.CampaignID < 0 || ev.RecipientID < 0 {
				t.Fatalf("negative ids in %+v", ev)
			}
			if ev.Email != strings.TrimSpace(ev.Email) || len(ev.Email) > 320 {
				t.Fatalf("email %q not trimmed or over 320 bytes", ev.Email)
			}
			if len(ev.Reason) > 500 || !utf8.ValidString(ev.Reason) {
				t.Fatalf("reason of %d bytes, valid UTF-8 %v", len(ev.Reason), utf8.ValidString(ev.Reason))
			}
			if !ev.At.IsZero() && ev.At.Unix() <= 0 {
				t.Fatalf("event time %v", ev.At)
			}
		}
	})
}
