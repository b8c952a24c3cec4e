package sqlite_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

func TestRetry(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	c := MustSending(t, db, 5)
	rs, _ := db.Claim(ctx, c.ID, 5, "tok", t0.Add(time.Minute), t0)
	classes := []core.ErrorClass{core.ClassPermanent, core.ClassTransient, core.ClassPermanent}
	for i, cl := range classes {
		if err := db.RecordOutcome(ctx, core.Outcome{RecipientID: rs[i].ID, ClaimToken: "tok", Status: core.RecipientFailed, ErrorClass: cl, Error: "x", At: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.RecordOutcome(ctx, core.Outcome{RecipientID: rs[3].ID, ClaimToken: "tok", Status: core.RecipientBounced, ErrorClass: "bounced", At: t0}); err != nil {
		t.Fatal(err)
	}
	failed, _ := db.Recipients(ctx, c.ID, core.RecipientFilter{Status: core.RecipientFailed})
	if len(failed) != 3 {
		t.Fatalf("FAILED listing: %d rows", len(failed))
	}
	later := t0.Add(time.Hour)
	if n, err := db.Retry(ctx, c.ID, "permanent", 0, later); err != nil || n != 2 {
		t.Fatalf("retry permanent: %d, %v", n, err)
	}
	r, _ := db.Recipient(ctx, rs[0].ID)
	if r.Status != core.RecipientQueued || r.Attempts != 0 || !r.NextAttemptAt.Equal(later) || r.LastErrorClass != "permanent" {
		t.Fatalf("retried row %+v", r)
	}
	if n, err := db.Retry(ctx, c.ID, "", 0, later); err != nil || n != 1 {
		t.Fatalf("retry all: %d, %v", n, err)
	}
	if n, err := db.Retry(ctx, c.ID, "", 0, later); err != nil || n != 0 {
		t.Fatalf("retry again: %d, %v", n, err)
	}
	if _, err := db.Retry(ctx, 999, "", 0, later); Code(err) != core.ENOTFOUND {
		t.Fatalf("retry unknown campaign: %v", err)
	}
	st, _ := db.Campaign(ctx, c.ID)
	if want := (core.Stats{Total: 5, Queued: 3, Sending: 1, Bounced: 1}); st.Stats != want {
		t.Fatalf("stats %+v, want %+v", st.Stats, want)
	}
	CheckCounters(t, db)
}

// Retry asks core.Transition in its transaction: a PAUSED campaign gets its
// rows back and stays paused, a COMPLETED one reopens, a CANCELLED or ACTIVE
// one is refused naming its status.
func TestRetryFollowsTransition(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		from, to core.CampaignStatus // to "": refused
	}{
		{core.CampaignSending, core.CampaignSending},
		{core.CampaignPaused, core.CampaignPaused},
		{core.CampaignCompleted, core.CampaignSending},
		{core.CampaignCancelled, ""},
	} {
		t.Run(string(tc.from), func(t *testing.T) {
			db := MustOpen(t)
			c := MustSending(t, db, 1)
			rs, _ := db.Claim(ctx, c.ID, 1, "tok", t0.Add(time.Minute), t0)
			if err := db.RecordOutcome(ctx, core.Outcome{RecipientID: rs[0].ID, ClaimToken: "tok", Status: core.RecipientFailed, ErrorClass: core.ClassPermanent, At: t0}); err != nil {
				t.Fatal(err)
			}
			switch tc.from {
			case core.CampaignCompleted:
				if done, err := db.CompleteCampaigns(ctx, t0); err != nil || len(done) != 1 {
					t.Fatalf("complete: %v %v", done, err)
				}
			case core.CampaignPaused, core.CampaignCancelled:
				if err := db.SetCampaignStatus(ctx, c.ID, core.CampaignSending, tc.from, t0); err != nil {
					t.Fatal(err)
				}
			}
			n, err := db.Retry(ctx, c.ID, "", 0, t0.Add(time.Hour))
			got, _ := db.Campaign(ctx, c.ID)
			if tc.to == "" {
				if Code(err) != core.ECONFLICT || !strings.Contains(err.Error(), string(tc.from)) || got.Status != tc.from || got.Stats.Queued != 0 {
					t.Fatalf("retry from %s: %d, %v, campaign %s %+v; want a conflict naming it, nothing requeued", tc.from, n, err, got.Status, got.Stats)
				}
				return
			}
			if err != nil || n != 1 || got.Status != tc.to || got.Stats.Queued != 1 {
				t.Fatalf("retry from %s: %d, %v, campaign %s %+v; want 1 requeued, %s", tc.from, n, err, got.Status, got.Stats, tc.to)
			}
			CheckCounters(t, db)
		})
	}
}
