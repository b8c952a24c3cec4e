package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

func TestDueCompleteAndQueue(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	a := MustSending(t, db, 3)
	b := MustSending(t, db, 2)
	draft := MustCampaign(t, db, "draft")
	MustInsert(t, db, draft.ID, Inputs(0, 4))

	due, err := db.DueCampaigns(ctx, t0)
	if err != nil || len(due) != 2 || due[0].ID != a.ID || due[1].ID != b.ID || due[0].Stats.Queued != 3 {
		t.Fatalf("due: %+v, %v", due, err)
	}
	if due, _ := db.DueCampaigns(ctx, t0.Add(-time.Second)); len(due) != 0 {
		t.Fatalf("due before queued_at: %d campaigns", len(due))
	}
	// b: one sent, one waiting for a retry in an hour.
	rs, _ := db.Claim(ctx, b.ID, 2, "t", t0.Add(time.Minute), t0)
	_ = db.RecordOutcome(ctx, core.Outcome{RecipientID: rs[0].ID, ClaimToken: "t", Status: core.RecipientSent, At: t0})
	_ = db.RecordOutcome(ctx, core.Outcome{RecipientID: rs[1].ID, ClaimToken: "t", Status: core.RecipientQueued, At: t0, NextAttemptAt: t0.Add(time.Hour)})
	// a: one in flight.
	_, _ = db.Claim(ctx, a.ID, 1, "t", t0.Add(time.Minute), t0)
	MustStatus(t, db, a.ID, core.CampaignSending, core.CampaignPaused)

	q, err := db.Queue(ctx, t0)
	if err != nil || len(q) != 2 {
		t.Fatalf("queue: %+v, %v", q, err)
	}
	// A paused campaign's queue is held, never due, with no next attempt.
	if q[0].CampaignID != a.ID || q[0].Status != core.CampaignPaused || q[0].DueNow != 0 || q[0].Held != 2 || q[0].Waiting != 0 || q[0].InFlight != 1 ||
		q[0].NextAttempt != nil || q[0].CampaignName != "sending" {
		t.Fatalf("queue a: %+v", q[0])
	}
	if q[1].CampaignID != b.ID || q[1].DueNow != 0 || q[1].Waiting != 1 || q[1].InFlight != 0 || !q[1].NextAttempt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("queue b: %+v", q[1])
	}
	if due, _ := db.DueCampaigns(ctx, t0); len(due) != 0 {
		t.Fatalf("due with a paused and b waiting: %+v", due)
	}
	if ids, err := db.CompleteCampaigns(ctx, t0); err != nil || len(ids) != 0 {
		t.Fatalf("complete with work left: %v, %v", ids, err)
	}
	rs, _ = db.Claim(ctx, b.ID, 2, "t2", t0.Add(2*time.Hour), t0.Add(time.Hour))
	_ = db.RecordOutcome(ctx, core.Outcome{RecipientID: rs[0].ID, ClaimToken: "t2", Status: core.RecipientFailed, At: t0})
	ids, err := db.CompleteCampaigns(ctx, t0.Add(time.Hour))
	if err != nil || len(ids) != 1 || ids[0] != b.ID {
		t.Fatalf("complete: %v, %v", ids, err)
	}
	got, _ := db.Campaign(ctx, b.ID)
	if got.Status != core.CampaignCompleted || got.Stats != (core.Stats{Total: 2, Sent: 1, Failed: 1}) {
		t.Fatalf("completed campaign: %s %+v", got.Status, got.Stats)
	}
	CheckCounters(t, db)
}

// TestCountersAfterMixedOperations runs a pseudo-random mix of every
// status-changing operation and checks the counters against COUNT(*).
func TestCountersAfterMixedOperations(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	a := MustSending(t, db, 400)
	b := MustCampaign(t, db, "b")
	MustInsert(t, db, b.ID, Inputs(0, 100))
	now := t0
	statuses := []core.RecipientStatus{core.RecipientSent, core.RecipientFailed, core.RecipientBounced, core.RecipientQueued}
	for round := 0; round < 20; round++ {
		now = now.Add(time.Minute)
		rs, err := db.Claim(ctx, a.ID, 17, fmt.Sprint("r", round), now.Add(30*time.Second), now)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range rs {
			if i%5 == 4 {
				continue // left to expire
			}
			st := statuses[(i+round)%len(statuses)]
			o := core.Outcome{RecipientID: r.ID, ClaimToken: r.ClaimToken, Status: st, At: now, NextAttemptAt: now.Add(90 * time.Second), ErrorClass: "transient"}
			if st == core.RecipientBounced {
				o.Suppress = &core.Suppression{Reason: "bounce"}
			}
			if err := db.RecordOutcome(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		policy := core.InDoubtResend
		if round%3 == 0 {
			policy = core.InDoubtHold
		}
		if _, err := db.RecoverLeases(ctx, now, policy.ExpiredLeases(3)); err != nil {
			t.Fatal(err)
		}
		if round%4 == 0 {
			if _, err := db.Retry(ctx, a.ID, "", 0, now); err != nil {
				t.Fatal(err)
			}
			if _, err := db.InsertRecipients(ctx, a.ID, Inputs(1000+round*10, 10), now); err != nil {
				t.Fatal(err)
			}
			if _, err := db.InsertRecipients(ctx, b.ID, Inputs(1000+round*10, 10), now); err != nil {
				t.Fatal(err)
			}
		}
	}
	CheckCounters(t, db)
}
