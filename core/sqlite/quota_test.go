package sqlite_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

var perMinute3 = core.Quota{Sender: "outbox", Rates: []core.Rate{{Limit: 3, Per: time.Minute}}}

// A claim under a quota never takes more than the window has left, and the
// window is shared by every campaign of the sender.
func TestClaimQuotaWindowNeverExceeded(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	a := MustSending(t, db, 10)
	b := MustSending(t, db, 10)
	lease := t0.Add(time.Hour)
	rs, err := db.ClaimQuota(ctx, perMinute3, a.ID, 50, "a1", lease, t0)
	if err != nil || len(rs) != 3 {
		t.Fatalf("first claim: %d rows, %v; want 3", len(rs), err)
	}
	// Same sender, other campaign, same minute: nothing left.
	if rs, err := db.ClaimQuota(ctx, perMinute3, b.ID, 50, "b1", lease, t0.Add(30*time.Second)); err != nil || len(rs) != 0 {
		t.Fatalf("claim over the window: %d rows, %v; want 0", len(rs), err)
	}
	// Nothing claimed: b's rows are untouched, no attempt counted.
	for _, r := range mustRecipients(t, db, b.ID) {
		if r.Status != core.RecipientQueued || r.Attempts != 0 {
			t.Fatalf("unclaimed row %+v", r)
		}
	}
	// Another sender has its own window.
	other := core.Quota{Sender: "smtp", Rates: perMinute3.Rates}
	if rs, err := db.ClaimQuota(ctx, other, b.ID, 50, "b2", lease, t0.Add(30*time.Second)); err != nil || len(rs) != 3 {
		t.Fatalf("other sender: %d rows, %v; want 3", len(rs), err)
	}
	// A minute (and one bucket) on, the window has refilled.
	if rs, err := db.ClaimQuota(ctx, perMinute3, b.ID, 50, "b3", lease, t0.Add(61*time.Second)); err != nil || len(rs) != 3 {
		t.Fatalf("after refill: %d rows, %v; want 3", len(rs), err)
	}
	q, err := db.SenderQuota(ctx, "outbox")
	if err != nil {
		t.Fatal(err)
	}
	st := q.Status(perMinute3.Rates, t0.Add(62*time.Second))
	if st.Windows[0].Used != 3 || st.Windows[0].Remaining != 0 || st.Windows[0].NextRefill == nil {
		t.Fatalf("status %+v", st.Windows[0])
	}
	CheckCounters(t, db)
}

func mustRecipients(t *testing.T, db interface {
	Recipients(context.Context, int64, core.RecipientFilter) ([]*core.Recipient, error)
}, id int64) []*core.Recipient {
	t.Helper()
	rs, err := db.Recipients(context.Background(), id, core.RecipientFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// Sends handed back unsent give their slot back.
func TestRefundQuota(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	c := MustSending(t, db, 10)
	rs, err := db.ClaimQuota(ctx, perMinute3, c.ID, 50, "tok", t0.Add(time.Hour), t0)
	if err != nil || len(rs) != 3 {
		t.Fatalf("claim: %d, %v", len(rs), err)
	}
	if err := db.RefundQuota(ctx, perMinute3, 2, t0, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// A refund for a sender with no windows is a no-op, not an error.
	if err := db.RefundQuota(ctx, core.Quota{Sender: "nobody", Rates: perMinute3.Rates}, 2, t0, t0); err != nil {
		t.Fatal(err)
	}
	if rs, err := db.ClaimQuota(ctx, perMinute3, c.ID, 50, "tok2", t0.Add(time.Hour), t0.Add(2*time.Second)); err != nil || len(rs) != 2 {
		t.Fatalf("claim after refund of 2: %d, %v; want 2", len(rs), err)
	}
}

// Two claimers on separate connections (a cron tick and the daemon) share
// one window: together they never take more than it allows.
func TestClaimQuotaConcurrentClaimers(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/campaignd.db"
	one := MustOpenPath(t, path)
	c := MustSending(t, one, 200)
	two := MustOpenPath(t, path)
	q := core.Quota{Sender: "outbox", Rates: []core.Rate{{Limit: 25, Per: time.Hour}}}
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for i, db := range []interface {
		ClaimQuota(context.Context, core.Quota, int64, int, string, time.Time, time.Time) ([]*core.Recipient, error)
	}{one, two, one, two} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 10 {
				rs, err := db.ClaimQuota(ctx, q, c.ID, 4, fmt.Sprintf("t%d-%d", i, k), t0.Add(2*time.Hour), t0.Add(time.Duration(k)*time.Second))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				total += len(rs)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if total != 25 {
		t.Fatalf("claimed %d in total under 25/hour, want exactly 25", total)
	}
	CheckCounters(t, one)
}

// A quota reply blocks the sender: nothing is claimed until the block ends,
// with or without rates, and a shorter block does not shorten it.
func TestBlockSender(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	c := MustSending(t, db, 10)
	until := t0.Add(time.Hour)
	if err := db.BlockSender(ctx, "outbox", until, "550 5.4.5 Daily user sending limit exceeded", t0); err != nil {
		t.Fatal(err)
	}
	if err := db.BlockSender(ctx, "outbox", t0.Add(time.Minute), "421 later", t0); err != nil {
		t.Fatal(err)
	}
	noRates := core.Quota{Sender: "outbox"}
	for _, q := range []core.Quota{noRates, perMinute3} {
		if rs, err := db.ClaimQuota(ctx, q, c.ID, 50, "tok", t0.Add(2*time.Hour), t0.Add(59*time.Minute)); err != nil || len(rs) != 0 {
			t.Fatalf("claim while blocked (%v): %d rows, %v", q.Rates, len(rs), err)
		}
	}
	sq, err := db.SenderQuota(ctx, "outbox")
	if err != nil || !sq.BlockedUntil.Equal(until) || sq.BlockedReason != "550 5.4.5 Daily user sending limit exceeded" {
		t.Fatalf("quota row %+v, %v", sq, err)
	}
	all, err := db.SenderQuotas(ctx)
	if err != nil || len(all) != 1 || all[0].Sender != "outbox" {
		t.Fatalf("all quotas %+v, %v", all, err)
	}
	if rs, err := db.ClaimQuota(ctx, perMinute3, c.ID, 50, "tok2", t0.Add(2*time.Hour), until); err != nil || len(rs) != 3 {
		t.Fatalf("claim at the block's end: %d rows, %v; want 3", len(rs), err)
	}
}

// UnblockSender lifts a block at once and says what it lifted; the
// windows keep their counts, and the messages the throttled reply put
// back in the queue are due at once. A sender without a block, or whose
// block is past, has nothing lifted (a past block's row is cleared all the
// same).
func TestUnblockSender(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	c := MustSending(t, db, 10)
	rs, err := db.ClaimQuota(ctx, perMinute3, c.ID, 2, "tok", t0.Add(time.Hour), t0)
	if err != nil || len(rs) != 2 {
		t.Fatalf("claim: %d rows, %v", len(rs), err)
	}
	until := t0.Add(24 * time.Hour)
	const reply = "550 5.4.5 Daily user sending limit exceeded"
	if _, err := db.RecordOutcomes(ctx, []core.Outcome{
		{RecipientID: rs[0].ID, CampaignID: c.ID, ClaimToken: "tok", Status: core.RecipientQueued, ErrorClass: core.ClassThrottled,
			ErrorCode: 550, EnhancedCode: "5.4.5", Error: reply, At: t0, NextAttemptAt: until, RefundAttempt: true},
		{RecipientID: rs[1].ID, CampaignID: c.ID, ClaimToken: "tok", Status: core.RecipientSent, ProviderID: "p", At: t0},
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.BlockSender(ctx, c.Sender, until, reply, t0); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Second)
	u, err := db.UnblockSender(ctx, c.Sender, at)
	if err != nil || !u.WasBlocked || !u.BlockedUntil.Equal(until) || u.Reason != reply || u.DueNow != 1 || u.Sender != c.Sender {
		t.Fatalf("unblock = %+v, %v; want the block lifted (%v, %q) and 1 message due", u, err, until, reply)
	}
	sq, err := db.SenderQuota(ctx, c.Sender)
	if err != nil || !sq.BlockedUntil.IsZero() || sq.BlockedReason != "" || len(sq.Windows) != 1 {
		t.Fatalf("quota row after unblock %+v, %v: want no block, the window kept", sq, err)
	}
	if r, err := db.Recipient(ctx, rs[0].ID); err != nil || r.Status != core.RecipientQueued || r.NextAttemptAt == nil || !r.NextAttemptAt.Equal(at) {
		t.Fatalf("throttled recipient after unblock %+v, %v; want QUEUED, due at the unblock", r, err)
	}
	// The window still holds the 2 sends: 1 of 3 left.
	if got, err := db.ClaimQuota(ctx, perMinute3, c.ID, 50, "tok2", t0.Add(time.Hour), at); err != nil || len(got) != 1 {
		t.Fatalf("claim after unblock: %d rows, %v; want 1 (the window's count stays)", len(got), err)
	}
	for _, sender := range []string{c.Sender, "other"} {
		if u, err := db.UnblockSender(ctx, sender, at); err != nil || u.WasBlocked || u.BlockedUntil != nil || u.Reason != "" || u.DueNow != 0 {
			t.Errorf("unblock %s again: %+v, %v; want nothing lifted", sender, u, err)
		}
	}
	if all, err := db.SenderQuotas(ctx); err != nil || len(all) != 1 {
		t.Errorf("quota rows %+v, %v: unblocking a sender without a row must not write one", all, err)
	}
	// A block already over lifts nothing, but its row is cleared.
	if err := db.BlockSender(ctx, c.Sender, t0.Add(time.Minute), "421 slow down", t0); err != nil {
		t.Fatal(err)
	}
	if u, err := db.UnblockSender(ctx, c.Sender, t0.Add(2*time.Minute)); err != nil || u.WasBlocked {
		t.Fatalf("unblock after the block's end: %+v, %v; want nothing lifted", u, err)
	}
	if sq, err := db.SenderQuota(ctx, c.Sender); err != nil || !sq.BlockedUntil.IsZero() || sq.BlockedReason != "" {
		t.Fatalf("row %+v, %v: want the past block cleared", sq, err)
	}
}
