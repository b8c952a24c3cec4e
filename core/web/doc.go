// Package web is campaignd's optional public HTTP listener: the few
// endpoints the outside world calls into a running daemon. It is off unless
// the daemon is configured to listen, and it never serves the control API:
// only the routes below exist, everything else is 404.
//
// # Routes
//
//	POST /webhooks/sendgrid               SendGrid Event Webhook -> 200 WebhookResult
//	GET  /unsubscribe/{token}             confirmation page with a button; changes nothing
//	POST /unsubscribe/{token}             RFC 8058 one-click unsubscribe -> 200 small HTML page
//	POST /api/cron/process-email-queue    Bearer CronSecret: one tick -> 200 CronTickResult
//	POST /api/campaigns/{id}/execute      Bearer CronSecret: execute -> 200 CronExecuteResult
//
// The unsubscribe routes answer 404 when no Unsubscriber is configured, the
// two /api routes when no CronSecret is.
//
// # Errors
//
// Errors are {"error": {"code": "...", "message": "..."}}, with a core
// error code (or "unauthorized" for a missing or wrong bearer token,
// "method_not_allowed" for a route asked with the wrong method) mapped to
// the HTTP status in one function shared with the control API,
// httpx.Status: invalid 400, unauthorized 401, forbidden 403, not_found
// 404, method_not_allowed 405, conflict 409, too_large 413, unavailable
// 503, internal 500. The unsubscribe routes answer the same statuses with a
// small HTML page instead, since people see them.
//
// # SendGrid Event Webhook
//
// The route exists only when Config.SendGridWebhook is set (the daemon
// sets it when a SendGrid sender is configured); otherwise it is 404.
// Unsigned posts are refused (403) unless the operator opted in with
// Config.SendGridUnsigned: event ids are guessable small integers, so an
// unsigned webhook lets anyone who reaches the listener suppress any
// address and turn SENT into BOUNCED.
//
// The body is the JSON array SendGrid posts. When Config.SendGridPublicKey
// is set the request must carry SendGrid's signature: the
// X-Twilio-Email-Event-Webhook-Signature header holds a base64 ASN.1 (DER)
// ECDSA P-256 signature over SHA-256 of the
// X-Twilio-Email-Event-Webhook-Timestamp header's bytes followed by the raw
// request body, verifiable with the "verification key" SendGrid shows
// (base64 of the DER PKIX public key). This is what SendGrid's own helpers
// do (sendgrid-go helpers/eventwebhook VerifySignature; Twilio docs,
// "Getting Started with the Event Webhook Security Features"). A missing or
// bad signature is 403 and nothing is applied.
//
// SendGrid documents no freshness window for the timestamp and its helpers
// check none, while it retries a post that got no 2xx "at increasing
// intervals for up to 24 hours after the event occurs" and recommends
// deduplicating on sg_event_id (Twilio docs, "Troubleshooting the Event
// Webhook"). Whether a retry is signed afresh is not documented. So the
// signed timestamp may be up to Config.SignatureMaxAge old
// (DefaultSignatureMaxAge, 48 h, comfortably past SendGrid's retry window;
// negative disables the check) and at most 5 minutes in the future. A shorter window would buy little:
// every event is applied at most once per sg_event_id, so a replayed body
// only counts duplicates; it would risk refusing SendGrid's own late
// retries, losing bounces for good.
//
// The whole body is read, verified and parsed before anything is applied:
// malformed JSON (or a body that is not an array) is 400 and nothing
// changes. Within a valid array, an element that is not an event object
// or lacks sg_event_id (or whose sg_event_id is over 128 bytes or email
// over 320) is skipped with a log line (a 4xx would make SendGrid retry
// the whole batch for a day and then drop it), a reason is cut at 500
// bytes, and event types campaignd does not act on (processed,
// group_resubscribe, ...) are ignored; both are counted in the answer. The recipient comes from the
// custom args campaign_id and recipient_id that the SendGrid plugin puts
// on every message and SendGrid echoes as top-level event fields (strings
// or numbers), falling back to the email address within the campaign.
//
// # One-click unsubscribe (RFC 8058)
//
// Messages carry List-Unsubscribe: <public_url/unsubscribe/TOKEN> and
// List-Unsubscribe-Post: List-Unsubscribe=One-Click. A mail client POSTs
// List-Unsubscribe=One-Click to that URL, as multipart/form-data or
// application/x-www-form-urlencoded (both are accepted, at most 4 KiB); the
// field is required. GET only shows a page with a button that makes the
// same POST: mail scanners fetch links, and a fetch must never
// unsubscribe anyone. A forged or malformed token is 404 on both, before
// anything is looked up. Unsubscribing twice is harmless.
//
// # Cron endpoints
//
// For operators who drive campaignd with curl from cron:
//
//	curl -fsS -X POST -H "Authorization: Bearer $CRON_SECRET" https://host/api/cron/process-email-queue
//
// The bearer token is compared with the configured secret in constant time
// (both sides are hashed with SHA-256 first, so not even the length leaks).
// A missing or wrong token is 401 with WWW-Authenticate and nothing runs.
// The tick runs with trigger core.TriggerHTTP and is not cancelled when the
// caller hangs up; the engine bounds it with tick_timeout.
package web
