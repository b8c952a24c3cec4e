package sgsender_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/plugins/sendgrid/internal/sgsender"
	"github.com/campaignd/campaignd/sdk"
)

func TestClassifyTable(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	body := func(s string) []byte { return []byte(s) }
	cases := []struct {
		name    string
		status  int
		header  http.Header
		body    []byte
		sandbox bool
		class   sdk.Class // "" means a Receipt
		msg     string
	}{
		{"202", 202, http.Header{"X-Message-Id": {"abc"}}, nil, false, "", ""},
		{"200 sandbox", 200, nil, nil, true, "", ""},
		{"200 not sandbox", 200, nil, nil, false, sdk.ClassTransient, "not queued"},
		{"201", 201, nil, nil, false, sdk.ClassTransient, "unexpected 201"},
		{"301", 301, http.Header{"Location": {"https://elsewhere.example/"}}, nil, false, sdk.ClassConfig, "redirect"},
		{"400 fields", 400, nil, body(`{"errors":[{"message":"The subject is required.","field":"subject","help":"http://x"},{"message":"Bad thing","field":null}]}`), false, sdk.ClassPermanent, "The subject is required. (field: subject); Bad thing"},
		{"400 field null string", 400, nil, body(`{"errors":[{"message":"invalid request","field":"null"}]}`), false, sdk.ClassPermanent, "send: invalid request"},
		{"400 not JSON", 400, nil, body("<html>\n<b>bad</b>\n</html>"), false, sdk.ClassPermanent, "<html> <b>bad</b> </html>"},
		{"400 empty", 400, nil, nil, false, sdk.ClassPermanent, "Bad Request"},
		{"401", 401, nil, body(`{"errors":[{"message":"The provided authorization grant is invalid, expired, or revoked","field":null,"help":null}]}`), false, sdk.ClassConfig, "SendGrid refused the API key: The provided authorization grant"},
		{"403", 403, nil, body(`{"errors":[{"message":"The from address does not match a verified Sender Identity.","field":"from"}]}`), false, sdk.ClassPermanent, "verified Sender Identity. (field: from)"},
		{"404", 404, nil, body(`{"errors":[{"message":"not found"}]}`), false, sdk.ClassConfig, "check api_url"},
		{"405", 405, nil, nil, false, sdk.ClassConfig, "check api_url"},
		{"408", 408, nil, nil, false, sdk.ClassTransient, "Request Timeout"},
		{"413", 413, nil, body(`{"errors":[{"message":"content too large","field":null}]}`), false, sdk.ClassPermanent, "content too large"},
		{"415", 415, nil, body(`{"errors":[{"message":"Invalid UTF8 in request"}]}`), false, sdk.ClassPermanent, "Invalid UTF8"},
		{"429", 429, http.Header{"X-Ratelimit-Reset": {"1"}}, body(`{"errors":[{"field":null,"message":"too many requests"}]}`), false, sdk.ClassThrottled, "rate limited: too many requests"},
		{"500", 500, nil, body(`{"errors":[{"message":"internal server error"}]}`), false, sdk.ClassTransient, "internal server error"},
		{"502 html", 502, nil, body("<html><body>Bad Gateway</body></html>"), false, sdk.ClassTransient, "Bad Gateway"},
		{"503", 503, nil, nil, false, sdk.ClassTransient, "Service Unavailable"},
		{"600", 600, nil, nil, false, sdk.ClassTransient, "HTTP 600"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := c.header
			if h == nil {
				h = http.Header{}
			}
			r, e := sgsender.Classify(c.status, h, c.body, c.sandbox, now)
			if (r == nil) == (e == nil) {
				t.Fatalf("receipt %v and error %v: want exactly one", r, e)
			}
			if c.class == "" {
				if e != nil {
					t.Fatalf("error %v, want a receipt", e)
				}
				if r.ProviderID != h.Get("X-Message-Id") || r.Response == "" {
					t.Errorf("receipt %+v", r)
				}
				return
			}
			if e == nil {
				t.Fatalf("receipt %+v, want %s", r, c.class)
			}
			if e.Class != c.class || e.HTTPStatus != c.status || !strings.Contains(e.Message, c.msg) {
				t.Errorf("got %#v, want class %s status %d message containing %q", *e, c.class, c.status, c.msg)
			}
			if c.class != sdk.ClassThrottled && e.RetryAfter != 0 {
				t.Errorf("RetryAfter %s on a %s error", e.RetryAfter, e.Class)
			}
		})
	}
}

func TestClassifyLongBodyIsCut(t *testing.T) {
	_, e := sgsender.Classify(500, http.Header{}, []byte(strings.Repeat("é", 5000)), false, time.Now())
	if len(e.Message) > 2100 || !strings.HasSuffix(e.Message, "…") {
		t.Errorf("message of %d bytes: %q...", len(e.Message), e.Message[:40])
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	date := now.Add(-time.Hour) // the server's clock is an hour behind ours
	unix := func(tm time.Time) string { return strconv.FormatInt(tm.Unix(), 10) }
	cases := []struct {
		name string
		h    http.Header
		want time.Duration
	}{
		{"reset against Date", http.Header{"Date": {date.Format(http.TimeFormat)}, "X-Ratelimit-Reset": {unix(date.Add(5 * time.Second))}}, 5 * time.Second},
		{"reset against now", http.Header{"X-Ratelimit-Reset": {unix(now.Add(7 * time.Second))}}, 7 * time.Second},
		{"reset now", http.Header{"X-Ratelimit-Reset": {unix(now)}}, time.Second},
		{"reset in the past", http.Header{"X-Ratelimit-Reset": {unix(now.Add(-time.Minute))}}, time.Second},
		{"reset far ahead", http.Header{"X-Ratelimit-Reset": {unix(now.Add(48 * time.Hour))}}, time.Hour},
		{"reset garbage, Retry-After seconds", http.Header{"X-Ratelimit-Reset": {"soon"}, "Retry-After": {"9"}}, 9 * time.Second},
		{"Retry-After zero", http.Header{"Retry-After": {"0"}}, time.Second},
		{"Retry-After huge", http.Header{"Retry-After": {"99999999999"}}, time.Hour},
		{"Retry-After date", http.Header{"Date": {date.Format(http.TimeFormat)}, "Retry-After": {date.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second},
		{"nothing", http.Header{}, 0},
		{"garbage only", http.Header{"Retry-After": {"later"}}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := sgsender.RetryAfter(c.h, now); got != c.want {
				t.Errorf("RetryAfter = %s, want %s", got, c.want)
			}
		})
	}
}
