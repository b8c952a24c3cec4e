package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

func TestRecoverLeases(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		policy          core.InDoubtPolicy
		maxAttempts     int
		requeued, held  int64
		wantStatusFirst core.RecipientStatus
	}{
		{core.InDoubtResend, 5, 4, 0, core.RecipientQueued},
		{"", 0, 4, 0, core.RecipientQueued},
		{core.InDoubtResend, 1, 0, 4, core.RecipientFailed}, // attempts exhausted
		{core.InDoubtHold, 5, 0, 4, core.RecipientFailed},
		{"shrug", 5, 0, 4, core.RecipientFailed}, // a policy core does not know resends nothing
	} {
		t.Run(fmt.Sprintf("%s-%d", tc.policy, tc.maxAttempts), func(t *testing.T) {
			db := MustOpen(t)
			c := MustSending(t, db, 6)
			expired, _ := db.Claim(ctx, c.ID, 4, "dead", t0.Add(time.Minute), t0)
			live, _ := db.Claim(ctx, c.ID, 2, "alive", t0.Add(time.Hour), t0)

			// Nothing has expired yet: nothing happens.
			if got, err := db.RecoverLeases(ctx, t0.Add(time.Minute), tc.policy.ExpiredLeases(tc.maxAttempts)); err != nil || got != (core.LeaseRecovery{}) {
				t.Fatalf("recover before expiry: %+v, %v", got, err)
			}
			now := t0.Add(2 * time.Minute)
			got, err := db.RecoverLeases(ctx, now, tc.policy.ExpiredLeases(tc.maxAttempts))
			if err != nil {
				t.Fatal(err)
			}
			if got.Requeued != tc.requeued || got.Failed != tc.held {
				t.Fatalf("recovered %+v, want requeued %d failed %d", got, tc.requeued, tc.held)
			}
			for _, r := range expired {
				r, _ := db.Recipient(ctx, r.ID)
				if r.Status != tc.wantStatusFirst || r.ClaimToken != "" || r.LeaseUntil != nil || r.LastErrorClass != core.ClassInDoubt || r.Attempts != 1 {
					t.Fatalf("recovered row %+v", r)
				}
				if r.Status == core.RecipientQueued && !r.NextAttemptAt.Equal(now) {
					t.Fatalf("requeued row not due now: %+v", r)
				}
			}
			for _, r := range live {
				r, _ := db.Recipient(ctx, r.ID)
				if r.Status != core.RecipientSending || r.ClaimToken != "alive" {
					t.Fatalf("live lease touched: %+v", r)
				}
			}
			CheckCounters(t, db)
			if tc.held > 0 {
				if n, err := db.Retry(ctx, c.ID, core.ClassInDoubt, 0, now); err != nil || n != tc.held {
					t.Fatalf("retry in_doubt: %d, %v", n, err)
				}
				CheckCounters(t, db)
			}
		})
	}
	db := MustOpen(t)
	if _, err := db.RecoverLeases(ctx, t0, core.ExpiredLeases{RequeueBelow: 1}); Code(err) != core.EINVALID {
		t.Fatalf("rule without a class: %v, want EINVALID", err)
	}
}
