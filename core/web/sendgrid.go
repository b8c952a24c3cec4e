package web

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/internal/httpx"
)

// SendGrid's Signed Event Webhook headers.
const (
	SignatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
	TimestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// ProviderSendGrid is the provider name SendGrid events are recorded under
// (and deduplicated within).
const ProviderSendGrid = "sendgrid"

// Bounds on an event's text fields, so an unsigned or buggy post cannot
// store (or print to an operator) megabytes per event. SendGrid's own
// sg_event_id is about 22 to 48 characters; an address is at most 254
// octets (RFC 5321), with room for a display form.
const (
	maxReasonLen  = 500
	maxEventIDLen = 128
	maxEmailLen   = 320
	maxLogTextLen = 64
)

// WebhookResult is the answer to a webhook post: what ApplyEvents did
// (applied, duplicates, unknown) plus the events not handed to it.
type WebhookResult struct {
	core.EventsResult
	// Ignored counts events of types campaignd does not act on.
	Ignored int `json:"ignored"`
	// Skipped counts array elements that are not usable events (not an
	// object, no sg_event_id, wrongly typed fields); each is logged.
	Skipped int `json:"skipped"`
}

// ParseSendGridPublicKey parses a Signed Event Webhook verification key:
// base64 (standard alphabet, whitespace ignored) of the DER PKIX public
// key, as SendGrid shows it, or the same key in a PEM "PUBLIC KEY" block.
// It returns an EINVALID error unless the key is ECDSA on P-256.
func ParseSendGridPublicKey(s string) (*ecdsa.PublicKey, error) {
	var der []byte
	if block, _ := pem.Decode([]byte(strings.TrimSpace(s))); block != nil {
		der = block.Bytes
	} else {
		b64 := strings.Map(func(r rune) rune {
			if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
				return -1
			}
			return r
		}, s)
		var err error
		if der, err = base64.StdEncoding.DecodeString(b64); err != nil {
			return nil, &core.Error{Code: core.EINVALID, Message: "sendgrid public key: not base64: " + err.Error(), Err: err}
		}
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, &core.Error{Code: core.EINVALID, Message: "sendgrid public key: not a DER public key: " + err.Error(), Err: err}
	}
	key, ok := pub.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, core.Errorf(core.EINVALID, "sendgrid public key: want an ECDSA P-256 key, got %T", pub)
	}
	return key, nil
}

// verifySendGrid checks the request's signature over timestamp and raw
// body. EFORBIDDEN for a missing, malformed, stale or wrong signature.
func (s *Server) verifySendGrid(r *http.Request, body []byte) error {
	sig64 := strings.TrimSpace(r.Header.Get(SignatureHeader))
	ts := strings.TrimSpace(r.Header.Get(TimestampHeader))
	if sig64 == "" || ts == "" {
		return core.Errorf(core.EFORBIDDEN, "sendgrid webhook: the request is not signed (%s and %s are required)", SignatureHeader, TimestampHeader)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return core.Errorf(core.EFORBIDDEN, "sendgrid webhook: %s is not a unix time", TimestampHeader)
	}
	sig, err := base64.StdEncoding.DecodeString(sig64)
	if err != nil {
		return core.Errorf(core.EFORBIDDEN, "sendgrid webhook: %s is not base64", SignatureHeader)
	}
	h := sha256.New()
	h.Write([]byte(r.Header.Get(TimestampHeader))) // the header's exact bytes are what was signed
	h.Write(body)
	if !ecdsa.VerifyASN1(s.sgKey, h.Sum(nil), sig) {
		return core.Errorf(core.EFORBIDDEN, "sendgrid webhook: bad signature")
	}
	// Only a genuine timestamp is worth judging for age.
	at, now := time.Unix(sec, 0), s.now()
	if s.cfg.SignatureMaxAge > 0 && now.Sub(at) > s.cfg.SignatureMaxAge {
		return core.Errorf(core.EFORBIDDEN, "sendgrid webhook: signed %s ago, more than the %s allowed", now.Sub(at).Round(time.Second), s.cfg.SignatureMaxAge)
	}
	if at.Sub(now) > maxFutureSkew {
		return core.Errorf(core.EFORBIDDEN, "sendgrid webhook: signed %s in the future; check the clock", at.Sub(now).Round(time.Second))
	}
	return nil
}

// sgEvent is the part of a SendGrid event campaignd reads. Custom args
// arrive as top-level fields. Fields of varying JSON type are raw.
type sgEvent struct {
	Event       string          `json:"event"`
	EventID     string          `json:"sg_event_id"`
	Email       string          `json:"email"`
	Timestamp   json.RawMessage `json:"timestamp"`
	Type        string          `json:"type"` // bounce: "bounce" or "blocked"
	Reason      json.RawMessage `json:"reason"`
	Response    json.RawMessage `json:"response"`
	Status      json.RawMessage `json:"status"`
	CampaignID  json.RawMessage `json:"campaign_id"`
	RecipientID json.RawMessage `json:"recipient_id"`
}

// sgTypes maps SendGrid event names to core types; the rest are ignored.
var sgTypes = map[string]core.EventType{
	"bounce":            core.EventBounce, // type "bounce"; type "blocked" is recorded only (sgType)
	"dropped":           core.EventDropped,
	"spamreport":        core.EventSpamReport,
	"unsubscribe":       core.EventUnsubscribe,
	"group_unsubscribe": core.EventGroupUnsubscribe,
	"delivered":         core.EventDelivered,
	"deferred":          core.EventDeferred,
	"open":              core.EventOpen,
	"click":             core.EventClick,
}

// sendgridWebhook handles POST /webhooks/sendgrid.
func (s *Server) sendgridWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := httpx.ReadBody(w, r, s.cfg.MaxBodyBytes, "sendgrid webhook body", 0)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	switch {
	case s.sgKey != nil:
		if err := s.verifySendGrid(r, body); err != nil {
			s.writeError(w, r, err)
			return
		}
	case !s.cfg.SendGridUnsigned:
		s.writeError(w, r, core.Errorf(core.EFORBIDDEN,
			"sendgrid webhook: unsigned posts are refused: set [http] sendgrid_public_key to the Signed Event Webhook verification key (or sendgrid_webhook_unsigned = true to accept posts from anyone)"))
		return
	}
	events, res, err := s.parseSendGrid(body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(events) > 0 {
		applied, err := s.b.ApplyEvents(r.Context(), events)
		if err != nil {
			// SendGrid retries the whole batch; what was applied comes
			// back as duplicates.
			s.writeError(w, r, fmt.Errorf("sendgrid webhook: apply events: %w", err))
			return
		}
		res.EventsResult = *applied
	}
	if res.Skipped > 0 || res.Unknown > 0 {
		s.log.Info("sendgrid webhook", "applied", res.Applied, "duplicates", res.Duplicates,
			"unknown", res.Unknown, "ignored", res.Ignored, "skipped", res.Skipped)
	}
	_ = httpx.WriteJSON(w, http.StatusOK, res)
}

// parseSendGrid turns a whole webhook body into core events. Malformed JSON
// or a body that is not an array is EINVALID; unusable elements are
// skipped and unknown types ignored, both counted in the result.
func (s *Server) parseSendGrid(body []byte) ([]core.DeliveryEvent, *WebhookResult, error) {
	res := &WebhookResult{}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return nil, nil, core.Errorf(core.EINVALID, "sendgrid webhook: the body must be a JSON array of events")
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, nil, jsonError(err)
	}
	events := make([]core.DeliveryEvent, 0, len(raw))
	for i, item := range raw {
		var ev sgEvent
		if t := bytes.TrimLeft(item, " \t\r\n"); len(t) == 0 || t[0] != '{' {
			res.Skipped++
			s.log.Warn("sendgrid webhook: element is not an event object; skipped", "index", i)
			continue
		}
		if err := json.Unmarshal(item, &ev); err != nil {
			res.Skipped++
			s.log.Warn("sendgrid webhook: event has a field of the wrong type; skipped", "index", i, "error", err)
			continue
		}
		typ, known := sgTypes[ev.Event]
		if typ == core.EventBounce && strings.EqualFold(strings.TrimSpace(ev.Type), "blocked") {
			// A block is the receiver refusing this sender (IP reputation,
			// content), not the address failing: like a 5.7.x report in the
			// bounce mailbox, it is recorded and suppresses nothing
			// (SendGrid's own Blocks list does not suppress either).
			typ = core.EventDeferred
		}
		if !known {
			res.Ignored++
			s.log.Trace("sendgrid webhook: event type not acted on", "event", truncate(ev.Event, maxLogTextLen), "sg_event_id", truncate(ev.EventID, maxLogTextLen))
			continue
		}
		if strings.TrimSpace(ev.EventID) == "" {
			res.Skipped++
			s.log.Warn("sendgrid webhook: event without sg_event_id skipped", "index", i, "event", ev.Event)
			continue
		}
		if len(strings.TrimSpace(ev.EventID)) > maxEventIDLen || len(strings.TrimSpace(ev.Email)) > maxEmailLen {
			res.Skipped++
			s.log.Warn("sendgrid webhook: event with an over-long sg_event_id or email skipped", "index", i, "event", ev.Event,
				"sg_event_id", truncate(ev.EventID, maxLogTextLen), "max_id", maxEventIDLen, "max_email", maxEmailLen)
			continue
		}
		cid, _ := flexInt(ev.CampaignID)
		rid, _ := flexInt(ev.RecipientID)
		de := core.DeliveryEvent{
			Provider:    ProviderSendGrid,
			EventID:     strings.TrimSpace(ev.EventID),
			Type:        typ,
			CampaignID:  max(cid, 0),
			RecipientID: max(rid, 0),
			Email:       strings.TrimSpace(ev.Email),
			Reason:      sgReason(ev),
		}
		if sec, ok := flexInt(ev.Timestamp); ok && sec > 0 {
			de.At = time.Unix(sec, 0).UTC()
		}
		events = append(events, de)
	}
	return events, res, nil
}

// sgReason builds an event's reason from its status (an enhanced code
// like 5.1.1) and its reason or response text.
func sgReason(ev sgEvent) string {
	text := flexString(ev.Reason)
	if text == "" {
		text = flexString(ev.Response)
	}
	if st := flexString(ev.Status); st != "" && !strings.Contains(text, st) {
		text = strings.TrimSpace(st + " " + text)
	}
	return truncate(text, maxReasonLen)
}

// flexString returns a JSON string's value, or a number's text; "" for
// anything else.
func flexString(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return strings.TrimSpace(s)
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String()
	}
	return ""
}

// flexInt reads an integer given as a JSON number or a string holding one
// (custom args are strings). ok is false for anything else.
func flexInt(raw json.RawMessage) (n int64, ok bool) {
	s := flexString(raw)
	if s == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// truncate shortens s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// jsonError turns an encoding/json error into an EINVALID naming the
// problem.
func jsonError(err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return &core.Error{Code: core.EINVALID, Message: "sendgrid webhook: invalid JSON at byte " + strconv.FormatInt(syn.Offset, 10) + ": " + strings.TrimPrefix(syn.Error(), "json: "), Err: err}
	}
	return &core.Error{Code: core.EINVALID, Message: "sendgrid webhook: " + strings.TrimPrefix(err.Error(), "json: "), Err: err}
}
