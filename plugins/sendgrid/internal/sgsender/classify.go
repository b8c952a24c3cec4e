package sgsender

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/campaignd/campaignd/sdk"
)

// Bounds of a throttled message's RetryAfter: at least a second (a reset
// "now" or in the past still means "not yet"), at most an hour (a wild
// header must not park the queue for days).
const (
	minRetryAfter = time.Second
	maxRetryAfter = time.Hour
)

// Lengths kept of SendGrid's error text.
const (
	maxDetail  = 2000
	maxSnippet = 300
)

// Classify maps the answer to one POST /v3/mail/send to a Receipt or an
// *sdk.Error (never both, never neither). The table:
//
//	202                      accepted: Receipt, ProviderID = X-Message-Id
//	200 with sandbox on      accepted: Receipt (validated, nothing delivered)
//	200 without sandbox,     transient: SendGrid documents 200 as "valid, but
//	other 2xx                not queued to be delivered" (sandbox only), so
//	                         the message is not known to be on its way
//	3xx                      config: the API never redirects; api_url is wrong
//	401                      config: the key is wrong, revoked or lacks the
//	                         mail.send permission; the host pauses the campaign
//	                         rather than failing every recipient
//	404, 405                 config: api_url does not point at the v3 API
//	408                      transient
//	429                      throttled; RetryAfter from X-RateLimit-Reset (Unix
//	                         seconds, measured against the answer's Date so
//	                         that clock skew does not matter), else from
//	                         Retry-After, at least 1 s and at most 1 h; 0 (the
//	                         host's choice) when neither header is usable
//	400, 403, 413, other 4xx permanent, with SendGrid's errors[].message and
//	                         field joined
//	5xx and anything else    transient
//
// Every error carries the HTTP status, and its Message the provider's text
// (errors[].message with "(field: x)", or the start of a non-JSON body).
// now is the local time, used when the answer has no usable Date.
func Classify(status int, h http.Header, body []byte, sandbox bool, now time.Time) (*sdk.Receipt, *sdk.Error) {
	detail := errorDetail(status, body)
	e := func(c sdk.Class, format string, args ...any) *sdk.Error {
		return (&sdk.Error{Class: c, Message: fmt.Sprintf(format, args...)}).WithHTTP(status)
	}
	switch {
	case status == http.StatusAccepted:
		return &sdk.Receipt{ProviderID: strings.TrimSpace(h.Get("X-Message-Id")), Response: "202 Accepted"}, nil
	case status == http.StatusOK && sandbox:
		return &sdk.Receipt{ProviderID: strings.TrimSpace(h.Get("X-Message-Id")),
			Response: "200 OK (sandbox mode: validated, not delivered)"}, nil
	case status >= 200 && status < 300:
		return nil, e(sdk.ClassTransient, "send: unexpected %d %s from mail/send: the message was not queued for delivery",
			status, http.StatusText(status))
	case status >= 300 && status < 400:
		return nil, e(sdk.ClassConfig, "send: unexpected redirect to %q: check api_url (want the API base URL, e.g. %s)",
			snippet(h.Get("Location")), DefaultAPIURL)
	case status == http.StatusUnauthorized:
		return nil, e(sdk.ClassConfig, "send: SendGrid refused the API key: %s (check api_key or %s, and that the key has the mail.send permission)",
			detail, APIKeyEnv)
	case status == http.StatusNotFound || status == http.StatusMethodNotAllowed:
		return nil, e(sdk.ClassConfig, "send: %s: check api_url (want the API base URL, e.g. %s)", detail, DefaultAPIURL)
	case status == http.StatusRequestTimeout:
		return nil, e(sdk.ClassTransient, "send: %s", detail)
	case status == http.StatusTooManyRequests:
		t := e(sdk.ClassThrottled, "send: rate limited: %s", detail)
		t.RetryAfter = RetryAfter(h, now)
		return nil, t
	case status >= 400 && status < 500:
		return nil, e(sdk.ClassPermanent, "send: %s", detail)
	default:
		return nil, e(sdk.ClassTransient, "send: %s", detail)
	}
}

// RetryAfter reads how long SendGrid asks to wait from a 429's headers:
// X-RateLimit-Reset (the Unix second at which the limit resets) minus the
// answer's Date (or now when Date is missing or unreadable), else
// Retry-After (seconds or an HTTP date). The result is clamped to
// [1s, 1h]; 0 means neither header was usable.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	ref := now
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		ref = d
	}
	if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs > 0 {
			return clampRetry(time.Unix(secs, 0).Sub(ref))
		}
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs >= 0 {
			if secs > int64(maxRetryAfter/time.Second) {
				return maxRetryAfter
			}
			return clampRetry(time.Duration(secs) * time.Second)
		}
		if t, err := http.ParseTime(v); err == nil {
			return clampRetry(t.Sub(ref))
		}
	}
	return 0
}

func clampRetry(d time.Duration) time.Duration {
	return min(max(d, minRetryAfter), maxRetryAfter)
}

// apiError is one entry of SendGrid's {"errors":[...]} body. Field is
// null, a string (sometimes the string "null"), or absent.
type apiError struct {
	Message string `json:"message"`
	Field   any    `json:"field"`
}

// errorDetail renders an error body: each errors[].message with its field,
// joined by "; "; else the start of the body; else the status text.
func errorDetail(status int, body []byte) string {
	var eb struct {
		Errors []apiError `json:"errors"`
	}
	var parts []string
	if json.Unmarshal(body, &eb) == nil {
		for _, x := range eb.Errors {
			msg := snippetN(x.Message, maxDetail)
			if msg == "" {
				continue
			}
			if f, ok := x.Field.(string); ok && f != "" && f != "null" {
				msg += " (field: " + snippet(f) + ")"
			}
			parts = append(parts, msg)
		}
	}
	detail := strings.Join(parts, "; ")
	if detail == "" {
		detail = snippet(string(body))
	}
	if detail == "" {
		detail = http.StatusText(status)
	}
	if detail == "" {
		detail = "HTTP " + strconv.Itoa(status)
	}
	return truncate(detail, maxDetail)
}

// snippet returns s on one line, without control characters, at most
// maxSnippet bytes.
func snippet(s string) string { return snippetN(s, maxSnippet) }

func snippetN(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	return truncate(strings.Join(strings.Fields(s), " "), n)
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
