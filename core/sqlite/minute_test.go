package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

// The minute counters move in the transactions that record outcomes, and
// the campaign's times with execute, claim, completion and retry.
func TestMinutesFollowOutcomes(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	c := MustSending(t, db, 6)
	rs, err := db.Claim(ctx, c.ID, 6, "tok", t0.Add(time.Hour), t0)
	if err != nil || len(rs) != 6 {
		t.Fatal(rs, err)
	}
	m1, m2 := t0.Add(10*time.Second), t0.Add(70*time.Second)
	outcomes := []core.Outcome{
		{Status: core.RecipientSent, ProviderID: "a", At: m1},
		{Status: core.RecipientSent, ProviderID: "b", At: m2},
		{Status: core.RecipientFailed, ErrorClass: "permanent", ErrorCode: 552, EnhancedCode: "5.2.2", Error: "mailbox full", At: m2},
		{Status: core.RecipientBounced, ErrorClass: "bounced", ErrorCode: 550, EnhancedCode: "5.1.1", Error: "no such user", At: m2},
		{Status: core.RecipientQueued, ErrorClass: "transient", ErrorCode: 451, Error: "try later", NextAttemptAt: m2, At: m2},
		{Status: core.RecipientQueued, ErrorClass: "throttled", ErrorCode: 421, Error: "slow down", RefundAttempt: true, At: m2},
	}
	for i, o := range outcomes {
		o.RecipientID, o.CampaignID, o.ClaimToken = rs[i].ID, c.ID, "tok"
		if err := db.RecordOutcome(ctx, o); err != nil {
			t.Fatalf("outcome %d: %v", i, err)
		}
	}
	ms, err := db.Minutes(ctx, c.ID, t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Sent != 1 || ms[1].Sent != 1 || ms[1].Failed != 1 || ms[1].Bounced != 1 || ms[1].Retried != 1 {
		t.Fatalf("minutes: %+v", ms)
	}
	if !ms[0].Minute.Equal(t0.Truncate(time.Minute)) || ms[1].LastFailure == "" {
		t.Fatalf("minutes: %+v", ms)
	}
	if later, err := db.Minutes(ctx, c.ID, m2, m2); err != nil || len(later) != 1 {
		t.Fatalf("from the second minute: %+v %v", later, err)
	}
	got, err := db.Campaign(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.StartedAt == nil || got.LastTickAt == nil || !got.LastTickAt.Equal(t0) || got.FinishedAt != nil {
		t.Fatalf("times: started %v last tick %v finished %v", got.StartedAt, got.LastTickAt, got.FinishedAt)
	}
	if rep := verify(t, db, c.ID); !rep.OK() {
		t.Fatalf("verify: %+v", rep.Violations)
	}
}

// verify runs the engine's audit over db.
func verify(t *testing.T, db core.Store, id int64) *core.VerifyReport {
	t.Helper()
	eng, err := core.NewEngine(db, nil, core.DefaultLimits(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := eng.Verify(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// Verify notices a minute table that disagrees with the rows.
func TestVerifyMinutes(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	c := MustSending(t, db, 2)
	rs, err := db.Claim(ctx, c.ID, 2, "tok", t0.Add(time.Hour), t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if err := db.RecordOutcome(ctx, core.Outcome{RecipientID: r.ID, ClaimToken: "tok", Status: core.RecipientSent, ProviderID: "x", At: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if rep := verify(t, db, c.ID); !rep.OK() {
		t.Fatalf("verify: %+v", rep.Violations)
	}
	if _, err := rawDB(t, db.Path()).Exec(`UPDATE campaign_minutes SET sent = sent + 1`); err != nil {
		t.Fatal(err)
	}
	rep := verify(t, db, c.ID)
	if rep.OK() || rep.Violations[0].Check != "minutes" {
		t.Fatalf("verify: %+v", rep.Violations)
	}
}

// EachFailure walks the FAILED and BOUNCED rows only, and retry --code
// takes one group back.
func TestEachFailureAndRetryCode(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	c := MustSending(t, db, 5)
	rs, err := db.Claim(ctx, c.ID, 5, "tok", t0.Add(time.Hour), t0)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		o := core.Outcome{RecipientID: r.ID, ClaimToken: "tok", At: t0, Status: core.RecipientFailed, ErrorClass: "permanent",
			ErrorCode: 552, Error: fmt.Sprintf("mailbox %s full", r.Email)}
		switch i {
		case 0:
			o = core.Outcome{RecipientID: r.ID, ClaimToken: "tok", At: t0, Status: core.RecipientSent, ProviderID: "x"}
		case 1:
			o.Status, o.ErrorClass, o.ErrorCode, o.Error = core.RecipientBounced, "bounced", 550, "no such user"
		case 2:
			o.ErrorCode = 554
		}
		if err := db.RecordOutcome(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[core.RecipientStatus]int{}
	if err := db.EachFailure(ctx, c.ID, func(r *core.Recipient) error {
		seen[r.Status]++
		if r.LastErrorClass == "" || r.Email == "" {
			t.Errorf("row without its failure: %+v", r)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if seen[core.RecipientFailed] != 3 || seen[core.RecipientBounced] != 1 || len(seen) != 2 {
		t.Fatalf("walked %v", seen)
	}
	if err := db.EachFailure(ctx, 999, func(*core.Recipient) error { return nil }); Code(err) != core.ENOTFOUND {
		t.Fatalf("unknown campaign: %v", err)
	}
	if n, err := db.Retry(ctx, c.ID, "permanent", 552, t0.Add(time.Minute)); err != nil || n != 2 {
		t.Fatalf("retry code 552: %d %v", n, err)
	}
	if n, err := db.Retry(ctx, c.ID, "", 0, t0.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("retry the rest: %d %v", n, err)
	}
}

// An execution carries its campaign's outcomes so far; a failed one none.
func TestExecutionOutcomes(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	c := MustSending(t, db, 3)
	if _, err := db.RecordFailedExecution(ctx, c.ID, "me", "no sender", t0); err != nil {
		t.Fatal(err)
	}
	rs, err := db.Claim(ctx, c.ID, 3, "tok", t0.Add(time.Hour), t0)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		o := core.Outcome{RecipientID: r.ID, ClaimToken: "tok", At: t0, Status: core.RecipientSent, ProviderID: "x"}
		if i == 2 {
			o = core.Outcome{RecipientID: r.ID, ClaimToken: "tok", At: t0, Status: core.RecipientFailed, ErrorClass: "permanent", Error: "no"}
		}
		if err := db.RecordOutcome(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	xs, err := db.Executions(ctx, c.ID, 10)
	if err != nil || len(xs) != 2 {
		t.Fatal(xs, err)
	}
	failed, done := xs[0], xs[1]
	if failed.Status != core.ExecutionFailed || failed.Sent != 0 || failed.SuccessRate != nil {
		t.Fatalf("failed execution: %+v", failed)
	}
	if done.Queued != 3 || done.Sent != 2 || done.Failed != 1 || done.SuccessRate == nil || *done.SuccessRate != 66.6 {
		t.Fatalf("execution: %+v", done)
	}
}
