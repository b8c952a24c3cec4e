package main

import (
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

// A campaign whose window does not open again before its expiry is not
// expired yet: queue must not say it is (its recipients fail only once
// the expiry comes, and an edit of the window or the expiry saves them).
func TestQueueOpensText(t *testing.T) {
	expired := opensText(&core.QueueSummary{Closed: "expired"})
	if !strings.Contains(expired, "expired") {
		t.Errorf("expired campaign: %q", expired)
	}
	for _, why := range []string{"send_window", "not_before"} {
		got := opensText(&core.QueueSummary{Closed: why})
		if strings.Contains(got, "next tick") || !strings.Contains(got, "before it expires") {
			t.Errorf("closed by %s, never opening before its expiry: %q, want it said that it expires first", why, got)
		}
	}
}

// `tick -v` accounts for every recipient the tick moved: those an expiry
// failed too (they are in no other count).
func TestTickLineExpired(t *testing.T) {
	if got := tickLine(&core.TickResult{Expired: 7}); !strings.Contains(got, "expired 7") {
		t.Errorf("tick -v: %q, want the 7 expired", got)
	}
}

// A sender blocked by a provider's reply but with no rate configured has
// no window: quotas print its block, not an empty window table.
func TestPrintQuotasBlockedWithoutRate(t *testing.T) {
	until := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var b strings.Builder
	printQuotas(&b, []*core.QuotaStatus{{Sender: "gmail", Windows: []core.QuotaWindowStatus{}, BlockedUntil: &until,
		BlockedReason: "550 5.4.5 Daily user sending limit exceeded"}})
	if out := b.String(); strings.Contains(out, "WINDOW") || !strings.Contains(out, "gmail: blocked until "+until.Local().Format(time.DateTime)) {
		t.Errorf("printQuotas:\n%s", out)
	}
}
