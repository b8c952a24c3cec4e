package core_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/sdk"
)

func TestParseRate(t *testing.T) {
	for s, want := range map[string]core.Rate{
		"30/minute": {Limit: 30, Per: time.Minute}, "500/day": {Limit: 500, Per: 24 * time.Hour},
		" 2 / second ": {Limit: 2, Per: time.Second}, "1/hour": {Limit: 1, Per: time.Hour},
	} {
		got, err := core.ParseRate(s)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, bad := range []string{"", "30", "30/minutes", "30/week", "0/day", "-1/day", "x/day", "1.5/day", "30/5m", "/day"} {
		_, err := core.ParseRate(bad)
		if core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "second, minute, hour or day") {
			t.Errorf("ParseRate(%q): %v, want EINVALID naming the units", bad, err)
		}
	}
	if _, err := core.ParseRates([]string{"30/minute", "40/minute"}); core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "40/minute") {
		t.Errorf("two rates per minute: %v", err)
	}
	if r, _ := core.ParseRate("500/day"); r.String() != "500/day" {
		t.Errorf("String() = %q", r.String())
	}
}

// The window is never exceeded at any moment, whatever the spacing of the
// sends, and it refills as the oldest sends leave it.
func TestSenderQuotaSlidingWindow(t *testing.T) {
	rates := []core.Rate{{Limit: 3, Per: time.Minute}}
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	var q core.SenderQuota
	var sent []time.Time
	for step := time.Duration(0); step < 10*time.Minute; step += 700 * time.Millisecond {
		now := t0.Add(step)
		n := q.Remaining(rates, now, 50)
		q.Take(rates, n, now)
		for range n {
			sent = append(sent, now)
		}
		// No minute (sliding) ever holds more than 3 sends.
		in := 0
		for _, s := range sent {
			if now.Sub(s) < time.Minute {
				in++
			}
		}
		if in > 3 {
			t.Fatalf("at %s: %d sends in the last minute, limit 3", step, in)
		}
	}
	// Under-use is bounded: 10 minutes at 3 a minute, less one bucket
	// per window at most.
	if len(sent) < 27 {
		t.Fatalf("sent %d in 10 minutes at 3/minute: the window is badly under-used", len(sent))
	}
	st := q.Status(rates, t0.Add(10*time.Minute))
	if len(st.Windows) != 1 || st.Windows[0].Rate != "3/minute" || st.Windows[0].Remaining != 3-st.Windows[0].Used {
		t.Fatalf("status %+v", st)
	}
}

func TestSenderQuotaRefundAndRefill(t *testing.T) {
	rates := []core.Rate{{Limit: 3, Per: time.Minute}, {Limit: 5, Per: 24 * time.Hour}}
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	var q core.SenderQuota
	if n := q.Remaining(rates, t0, 50); n != 3 {
		t.Fatalf("remaining %d, want 3 (the minute)", n)
	}
	q.Take(rates, 3, t0)
	if n := q.Remaining(rates, t0.Add(30*time.Second), 50); n != 0 {
		t.Fatalf("remaining %d after 3 sends, want 0", n)
	}
	st := q.Status(rates, t0.Add(30*time.Second))
	if w := st.Windows[0]; w.Remaining != 0 || w.NextRefill == nil || w.NextRefill.Before(t0.Add(time.Minute)) || w.NextRefill.After(t0.Add(62*time.Second)) {
		t.Fatalf("minute window %+v: want 0 left, refill about t0+1m", w)
	}
	q.Refund(rates, 2, t0, t0.Add(time.Second))
	if n := q.Remaining(rates, t0.Add(time.Second), 50); n != 2 {
		t.Fatalf("remaining %d after refunding 2, want 2", n)
	}
	// A minute later the minute window is full again; the day's holds 1 sent, 4 left.
	if n := q.Remaining(rates, t0.Add(2*time.Minute), 50); n != 3 {
		t.Fatalf("remaining %d two minutes on, want 3", n)
	}
	q.Take(rates, 3, t0.Add(2*time.Minute))
	if n := q.Remaining(rates, t0.Add(4*time.Minute), 50); n != 1 {
		t.Fatalf("remaining %d with 4 of 5 used today, want 1", n)
	}
	// A daily-limit reply blocks until the day window's oldest send leaves it.
	until := q.BlockUntil(rates, core.DailyLimitBlock, t0.Add(4*time.Minute))
	if until.Before(t0.Add(24*time.Hour)) || until.After(t0.Add(24*time.Hour+25*time.Minute)) {
		t.Fatalf("block until %s, want about t0+24h", until)
	}
	// Without a matching window: the retry-after itself.
	if until := (&core.SenderQuota{}).BlockUntil(nil, time.Hour, t0); !until.Equal(t0.Add(time.Hour)) {
		t.Fatalf("block without rates until %s, want t0+1h", until)
	}
	q.BlockedUntil = t0.Add(time.Hour)
	if n := q.Remaining(nil, t0.Add(time.Minute), 50); n != 0 {
		t.Fatalf("a blocked sender has %d left", n)
	}
	if n := q.Remaining(nil, t0.Add(time.Hour), 50); n != 50 {
		t.Fatalf("block over: %d left, want 50", n)
	}
}

// quotaHarness is a harness whose engine has rates for sender "fake" and a
// clock the test moves.
func quotaHarness(t *testing.T, rates ...string) (*harness, *time.Time) {
	t.Helper()
	h := newHarness(t, nil)
	rs, err := core.ParseRates(rates)
	if err != nil {
		t.Fatal(err)
	}
	lim := h.eng.Limits()
	lim.Rates = core.NewRateTable(map[string][]core.Rate{"fake": rs})
	now := time.Now().UTC().Truncate(time.Minute)
	eng, err := core.NewEngine(h.db, h.prov, lim, nil, core.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	h.eng = eng
	return h, &now
}

// A tick never starts a send a window does not allow; the rest stays
// QUEUED, unclaimed, no attempt counted, and the tick is quiet about it.
func TestTickQuotaPacing(t *testing.T) {
	h, now := quotaHarness(t, "3/minute", "500/day")
	id := h.campaign(10, func(s *core.CampaignSpec) { s.Concurrency = 2 })
	if res := h.tick(); res.Sent != 3 || res.Processed != 3 || len(res.Problems) != 0 {
		t.Fatalf("first tick %+v, want 3 sent, no problem", res)
	}
	ticks, _ := h.eng.Ticks(ctx, 10)
	res := h.tick()
	if res.Sent != 0 || res.Processed != 0 || res.Skipped || len(res.Problems) != 0 || res.Remaining != 7 {
		t.Fatalf("second tick in the same minute %+v, want nothing sent, quiet, 7 remaining", res)
	}
	if again, _ := h.eng.Ticks(ctx, 10); len(again) != len(ticks) {
		t.Fatalf("a tick paced by the quota left a tick record: %d -> %d", len(ticks), len(again))
	}
	for _, r := range h.recipients(id, core.RecipientQueued) {
		if r.Attempts != 0 {
			t.Fatalf("unclaimed recipient %s has %d attempts", r.Email, r.Attempts)
		}
	}
	if h.sender.sentCount() != 3 {
		t.Fatalf("plugin saw %d sends, want 3", h.sender.sentCount())
	}
	qs, err := h.eng.Quotas(ctx)
	if err != nil || len(qs) != 1 || qs[0].Sender != "fake" || len(qs[0].Windows) != 2 ||
		qs[0].Windows[0].Remaining != 0 || qs[0].Windows[1].Remaining != 497 || qs[0].Windows[0].NextRefill == nil {
		t.Fatalf("quotas %+v, %v", qs, err)
	}
	*now = now.Add(61 * time.Second)
	if res := h.tick(); res.Sent != 3 {
		t.Fatalf("tick a minute later %+v, want 3 sent", res)
	}
}

// A claimed message that is not sent (its address suppressed since the
// import) gives its slot back: the same minute's next tick sends another.
func TestTickQuotaRefundsUnsent(t *testing.T) {
	h, _ := quotaHarness(t, "3/minute")
	id := h.campaign(5, nil)
	if err := h.eng.Suppress(ctx, core.Suppression{Email: fmt.Sprintf("u0@c%d.example.org", id), Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if res := h.tick(); res.Sent != 2 || res.Failed != 1 {
		t.Fatalf("first tick %+v, want 2 sent and the suppressed one failed", res)
	}
	if res := h.tick(); res.Sent != 1 {
		t.Fatalf("second tick %+v, want the refunded slot used: 1 sent", res)
	}
}

// A provider's daily-limit reply blocks the sender until the day window
// refills: its recipients stay QUEUED with no attempt burned, and no
// campaign of the sender is claimed meanwhile.
func TestTickQuotaReplyBlocksSender(t *testing.T) {
	h, now := quotaHarness(t, "500/day")
	t0 := *now
	h.sender.fn = func(*sdk.Message, int) error {
		return sdk.Throttled(core.DailyLimitBlock, "MAIL FROM: Daily user sending limit exceeded").WithSMTP(550, "5.4.5")
	}
	id := h.campaign(4, func(s *core.CampaignSpec) { s.Concurrency = 1 })
	res := h.tick()
	if res.Throttled != 1 || res.Failed != 0 || res.Sent != 0 {
		t.Fatalf("tick %+v, want 1 throttled, none failed", res)
	}
	for _, r := range h.recipients(id, "") {
		if r.Status != core.RecipientQueued || r.Attempts != 0 {
			t.Fatalf("recipient %+v: want QUEUED, no attempt counted", r)
		}
	}
	qs, err := h.eng.Quotas(ctx)
	if err != nil || len(qs) != 1 || qs[0].BlockedUntil == nil || qs[0].BlockedUntil.Before(t0.Add(24*time.Hour)) ||
		!strings.Contains(qs[0].BlockedReason, "550 5.4.5") {
		t.Fatalf("quotas %+v, %v: want blocked about a day for the 550 5.4.5", qs, err)
	}
	// A new campaign of the same sender, due now, is not claimed.
	h.sender.fn = nil
	other := h.campaign(2, nil)
	*now = now.Add(time.Hour)
	if res := h.tick(); res.Processed != 0 {
		t.Fatalf("tick while blocked %+v, want nothing claimed", res)
	}
	if st := h.stats(other); st.Queued != 2 {
		t.Fatalf("other campaign %+v", st)
	}
	*now = qs[0].BlockedUntil.Add(time.Second)
	if res := h.tick(); res.Sent != 6 {
		t.Fatalf("tick after the block %+v, want all 6 sent", res)
	}
}

// An operator lifts a quota reply's block by hand (the account's limit
// was raised): the next tick claims for the sender again, within its
// windows, which kept their counts. An unknown sender is ENOTFOUND naming
// the configured ones; lifting no block is not an error.
func TestTickUnblockSender(t *testing.T) {
	h, now := quotaHarness(t, "3/minute")
	h.sender.fn = func(*sdk.Message, int) error {
		return sdk.Throttled(core.DailyLimitBlock, "MAIL FROM: Daily user sending limit exceeded").WithSMTP(550, "5.4.5")
	}
	id := h.campaign(5, func(s *core.CampaignSpec) { s.Concurrency = 1 })
	if res := h.tick(); res.Throttled != 1 {
		t.Fatalf("tick %+v, want 1 throttled", res)
	}
	h.sender.fn = nil
	*now = now.Add(time.Second)
	if res := h.tick(); res.Processed != 0 {
		t.Fatalf("tick while blocked %+v, want nothing claimed", res)
	}
	u, err := h.eng.UnblockSender(core.WithActor(ctx, "ann"), "fake")
	if err != nil || !u.WasBlocked || u.BlockedUntil == nil || u.BlockedUntil.Before(now.Add(23*time.Hour)) ||
		!strings.Contains(u.Reason, "550 5.4.5") || u.Sender != "fake" || u.DueNow != 3 {
		t.Fatalf("unblock = %+v, %v; want the day's block lifted with its reply, the 3 messages it held back due", u, err)
	}
	if qs, err := h.eng.Quotas(ctx); err != nil || len(qs) != 1 || qs[0].BlockedUntil != nil {
		t.Fatalf("quotas after unblock %+v, %v: want no block", qs, err)
	}
	// The throttled send started, so it stays counted: 2 of the minute's
	// 3 are left.
	if res := h.tick(); res.Sent != 2 || res.Processed != 2 {
		t.Fatalf("tick after unblock %+v, want 2 sent (the 3/minute window, one spent on the throttled send)", res)
	}
	if st := h.stats(id); st.Sent != 2 || st.Queued != 3 {
		t.Fatalf("stats %+v", st)
	}
	// The messages the throttle held back (the throttled one and the two
	// handed back unsent) were made due: the last 3 all go once the window
	// has refilled.
	*now = now.Add(2 * time.Minute)
	if res := h.tick(); res.Sent != 3 {
		t.Fatalf("tick when the window refilled %+v, want the last 3 sent", res)
	}
	if u, err := h.eng.UnblockSender(ctx, "fake"); err != nil || u.WasBlocked || u.BlockedUntil != nil || u.Reason != "" || u.DueNow != 0 {
		t.Fatalf("unblock again = %+v, %v; want nothing lifted, no error", u, err)
	}
	_, err = h.eng.UnblockSender(ctx, "gmail")
	if core.ErrorCode(err) != core.ENOTFOUND || !strings.Contains(err.Error(), `"gmail"`) || !strings.Contains(err.Error(), "configured: fake") {
		t.Fatalf("unknown sender: %v; want ENOTFOUND naming it and the configured senders", err)
	}
	if _, err := h.eng.UnblockSender(ctx, ""); core.ErrorCode(err) != core.EINVALID {
		t.Fatalf("empty sender: %v; want EINVALID", err)
	}
}

// A refund gives back only to the windows the claim was counted in: a
// window another process added since (a SIGHUP'd daemon with a new rate
// beside a cron tick with the old configuration) holds none of the
// refunded sends, and taking them from it would let it be exceeded.
func TestSenderQuotaRefundOnlyClaimedWindows(t *testing.T) {
	minute := []core.Rate{{Limit: 30, Per: time.Minute}}
	both := append([]core.Rate{{Limit: 5, Per: 24 * time.Hour}}, minute...)
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	var q core.SenderQuota
	q.Take(minute, 3, t0)                // the cron tick, minute window only
	q.Take(both, 5, t0.Add(time.Second)) // the daemon, day window added
	q.Refund(minute, 3, t0, t0.Add(2*time.Second))
	if n := q.Remaining(both, t0.Add(3*time.Second), 50); n != 0 {
		t.Fatalf("remaining %d: the cron tick's refund took sends out of the day window it never counted in", n)
	}
}

// Campaigns sharing a sender share its quota: when the window allows
// fewer sends than they have due, each gets its part, and none waits for
// the other to finish (cron ticks on the minute would otherwise give the
// whole window to the same campaign every time).
func TestTickQuotaSharedFairly(t *testing.T) {
	h, now := quotaHarness(t, "4/minute")
	a := h.campaign(20, nil)
	b := h.campaign(20, nil)
	for range 3 {
		if res := h.tick(); res.Sent != 4 {
			t.Fatalf("tick %+v, want the window's 4 sent", res)
		}
		*now = now.Add(time.Minute + time.Second)
	}
	if sa, sb := h.stats(a).Sent, h.stats(b).Sent; sa != 6 || sb != 6 {
		t.Fatalf("sent %d and %d in three ticks of 4/minute, want 6 each", sa, sb)
	}
}

// A throttled reply with a short delay (421 "try again in 5 minutes") is
// not a daily-limit reply: the block never outlasts the reply's own delay,
// even when the shortest window at least that long is the day's, whose
// oldest send leaves it only tomorrow.
func TestSenderQuotaBlockNotLongerThanReply(t *testing.T) {
	rates := []core.Rate{{Limit: 30, Per: time.Minute}, {Limit: 500, Per: 24 * time.Hour}}
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	var q core.SenderQuota
	q.Take(rates, 1, t0)
	now := t0.Add(time.Minute)
	if until := q.BlockUntil(rates, 5*time.Minute, now); until.After(now.Add(5 * time.Minute)) {
		t.Fatalf("blocked until %s for a 5-minute reply at %s", until, now)
	}
	// A daily-limit reply still waits for the day window's oldest send.
	if until := q.BlockUntil(rates, core.DailyLimitBlock, now); until.After(t0.Add(24*time.Hour+25*time.Minute)) || until.Before(t0.Add(24*time.Hour)) {
		t.Fatalf("daily-limit block until %s, want about t0+24h", until)
	}
}
