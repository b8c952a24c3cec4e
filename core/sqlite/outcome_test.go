package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

func TestRecordOutcome(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	c := MustSending(t, db, 6)
	rs, err := db.Claim(ctx, c.ID, 6, "tok", t0.Add(time.Minute), t0)
	if err != nil || len(rs) != 6 {
		t.Fatal(rs, err)
	}
	at := t0.Add(10 * time.Second)
	outcomes := []core.Outcome{
		{Status: core.RecipientSent, ProviderID: "q-123"},
		{Status: core.RecipientFailed, ErrorClass: "permanent", ErrorCode: 550, EnhancedCode: "5.7.1", Error: "rejected"},
		{Status: core.RecipientBounced, ErrorClass: "bounced", ErrorCode: 550, EnhancedCode: "5.1.1", Error: "no such user",
			Suppress: &core.Suppression{Reason: "5.1.1 no such user"}},
		{Status: core.RecipientQueued, ErrorClass: "throttled", ErrorCode: 421, Error: "slow down", NextAttemptAt: at.Add(time.Minute), RefundAttempt: true},
		{Status: core.RecipientQueued, NextAttemptAt: at.Add(time.Hour)},
		{Status: core.RecipientFailed, ErrorClass: "config", Error: "bad credentials", RefundAttempt: true},
	}
	for i, o := range outcomes {
		o.RecipientID, o.CampaignID, o.ClaimToken, o.At = rs[i].ID, c.ID, "tok", at
		if err := db.RecordOutcome(ctx, o); err != nil {
			t.Fatalf("outcome %d: %v", i, err)
		}
	}
	get := func(i int) *core.Recipient {
		r, err := db.Recipient(ctx, rs[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.LeaseUntil != nil || r.ClaimToken != "" || !r.UpdatedAt.Equal(at) {
			t.Fatalf("row %d keeps its lease: %+v", i, r)
		}
		return r
	}
	if r := get(0); r.Status != core.RecipientSent || r.SentAt == nil || !r.SentAt.Equal(at) || r.ProviderID != "q-123" || r.Attempts != 1 {
		t.Fatalf("sent: %+v", r)
	}
	if r := get(1); r.Status != core.RecipientFailed || r.LastErrorClass != "permanent" || r.LastErrorCode != 550 ||
		r.LastEnhancedCode != "5.7.1" || r.LastError != "rejected" || r.SentAt != nil {
		t.Fatalf("failed: %+v", r)
	}
	if r := get(2); r.Status != core.RecipientBounced || r.LastEnhancedCode != "5.1.1" {
		t.Fatalf("bounced: %+v", r)
	}
	if r := get(3); r.Status != core.RecipientQueued || r.Attempts != 0 || !r.NextAttemptAt.Equal(at.Add(time.Minute)) || r.LastErrorClass != "throttled" {
		t.Fatalf("throttled: %+v", r)
	}
	if r := get(4); r.Status != core.RecipientQueued || r.Attempts != 1 || !r.NextAttemptAt.Equal(at.Add(time.Hour)) || r.LastError != "" {
		t.Fatalf("handed back: %+v", r)
	}
	if r := get(5); r.Status != core.RecipientFailed || r.Attempts != 0 || r.LastErrorClass != "config" {
		t.Fatalf("config failure: %+v", r)
	}
	sup, err := db.Suppressions(ctx, 0)
	if err != nil || len(sup) != 1 || sup[0].Email != rs[2].Email || sup[0].Source != "bounce" || sup[0].Reason != "5.1.1 no such user" || !sup[0].CreatedAt.Equal(at) {
		t.Fatalf("suppression from the bounce: %+v, %v", sup, err)
	}
	st, _ := db.Campaign(ctx, c.ID)
	if want := (core.Stats{Total: 6, Queued: 2, Sent: 1, Failed: 2, Bounced: 1}); st.Stats != want {
		t.Fatalf("stats %+v, want %+v", st.Stats, want)
	}
	CheckCounters(t, db)

	// Once recorded, the same token no longer holds the row.
	err = db.RecordOutcome(ctx, core.Outcome{RecipientID: rs[0].ID, ClaimToken: "tok", Status: core.RecipientFailed, At: at})
	if Code(err) != core.ECONFLICT {
		t.Fatalf("second outcome: %v, want ECONFLICT", err)
	}
	if err := db.RecordOutcome(ctx, core.Outcome{RecipientID: rs[0].ID, ClaimToken: "tok", Status: core.RecipientSending}); Code(err) != core.EINVALID {
		t.Fatalf("SENDING outcome: %v, want EINVALID", err)
	}
}

func TestRecordOutcomeStaleTokenChangesNothing(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	c := MustSending(t, db, 1)
	rs, _ := db.Claim(ctx, c.ID, 1, "old", t0.Add(time.Minute), t0)
	// The lease expires, is recovered and claimed again by another tick.
	if _, err := db.RecoverLeases(ctx, t0.Add(2*time.Minute), core.InDoubtResend.ExpiredLeases(5)); err != nil {
		t.Fatal(err)
	}
	again, _ := db.Claim(ctx, c.ID, 1, "new", t0.Add(5*time.Minute), t0.Add(2*time.Minute))
	if len(again) != 1 || again[0].ID != rs[0].ID {
		t.Fatalf("reclaim: %+v", again)
	}
	before, _ := db.Recipient(ctx, rs[0].ID)
	statsBefore, _ := db.Campaign(ctx, c.ID)
	for _, o := range []core.Outcome{
		{RecipientID: rs[0].ID, ClaimToken: "old", Status: core.RecipientSent, At: t0.Add(3 * time.Minute)},
		{RecipientID: rs[0].ID, ClaimToken: "new", CampaignID: c.ID + 1, Status: core.RecipientSent, At: t0.Add(3 * time.Minute)},
		{RecipientID: rs[0].ID, ClaimToken: "old", Status: core.RecipientBounced, Suppress: &core.Suppression{Reason: "x"}},
		{RecipientID: 999, ClaimToken: "new", Status: core.RecipientSent},
	} {
		if err := db.RecordOutcome(ctx, o); Code(err) != core.ECONFLICT {
			t.Fatalf("stale outcome %+v: %v, want ECONFLICT", o, err)
		}
	}
	after, _ := db.Recipient(ctx, rs[0].ID)
	statsAfter, _ := db.Campaign(ctx, c.ID)
	if fmt.Sprint(*before) != fmt.Sprint(*after) || statsBefore.Stats != statsAfter.Stats {
		t.Fatalf("stale outcome changed the row:\n%+v\n%+v\n%+v %+v", before, after, statsBefore.Stats, statsAfter.Stats)
	}
	if sup, _ := db.Suppressions(ctx, 0); len(sup) != 0 {
		t.Fatalf("stale bounce suppressed: %+v", sup)
	}
	if err := db.RecordOutcome(ctx, core.Outcome{RecipientID: rs[0].ID, ClaimToken: "new", Status: core.RecipientSent}); err != nil {
		t.Fatalf("current token: %v", err)
	}
	CheckCounters(t, db)
}

// A group of outcomes goes in one transaction: across campaigns and
// minutes the counters and the minute rows add up as if each had its own,
// a stale claim and an invalid outcome are refused alone, and the others
// apply.
func TestRecordOutcomes(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	a := MustSending(t, db, 4)
	b := MustCampaign(t, db, "second")
	MustInsert(t, db, b.ID, Inputs(0, 3))
	MustStatus(t, db, b.ID, core.CampaignDraft, core.CampaignActive)
	if _, err := db.Execute(ctx, b.ID, "test", t0); err != nil {
		t.Fatal(err)
	}
	ra, err := db.Claim(ctx, a.ID, 4, "tok-a", t0.Add(time.Minute), t0)
	if err != nil || len(ra) != 4 {
		t.Fatal(ra, err)
	}
	rb, err := db.Claim(ctx, b.ID, 3, "tok-b", t0.Add(time.Minute), t0)
	if err != nil || len(rb) != 3 {
		t.Fatal(rb, err)
	}
	at, later := t0.Add(10*time.Second), t0.Add(90*time.Second) // two minutes
	group := []core.Outcome{
		{RecipientID: ra[0].ID, CampaignID: a.ID, ClaimToken: "tok-a", Status: core.RecipientSent, ProviderID: "p", At: at},
		{RecipientID: rb[0].ID, CampaignID: b.ID, ClaimToken: "tok-b", Status: core.RecipientFailed, ErrorClass: "permanent", Error: "first", At: at},
		{RecipientID: ra[1].ID, CampaignID: a.ID, ClaimToken: "stale", Status: core.RecipientSent, ProviderID: "p", At: at},
		{RecipientID: rb[1].ID, CampaignID: b.ID, ClaimToken: "tok-b", Status: core.RecipientBounced, ErrorClass: "bounced", Error: "second",
			Suppress: &core.Suppression{Reason: "5.1.1"}, At: at},
		{RecipientID: ra[2].ID, CampaignID: a.ID, ClaimToken: "tok-a", Status: core.RecipientSending, At: at},
		{RecipientID: ra[3].ID, CampaignID: a.ID, ClaimToken: "tok-a", Status: core.RecipientQueued, ErrorClass: "transient", Error: "later", At: later},
		{RecipientID: rb[2].ID, CampaignID: b.ID, ClaimToken: "tok-b", Status: core.RecipientSent, ProviderID: "p", At: later},
	}
	res, err := db.RecordOutcomes(ctx, group)
	if err != nil || len(res) != len(group) {
		t.Fatalf("record outcomes: %v, %v", res, err)
	}
	for i, want := range []string{"", "", core.ECONFLICT, "", core.EINVALID, "", ""} {
		if want == "" && res[i] != nil || want != "" && Code(res[i]) != want {
			t.Errorf("outcome %d: %v, want %q", i, res[i], want)
		}
	}
	sa, _ := db.Campaign(ctx, a.ID)
	if want := (core.Stats{Total: 4, Sending: 2, Sent: 1, Queued: 1}); sa.Stats != want {
		t.Errorf("campaign a: %+v, want %+v", sa.Stats, want)
	}
	sb, _ := db.Campaign(ctx, b.ID)
	if want := (core.Stats{Total: 3, Sent: 1, Failed: 1, Bounced: 1}); sb.Stats != want {
		t.Errorf("campaign b: %+v, want %+v", sb.Stats, want)
	}
	if sup, _ := db.Suppressions(ctx, 0); len(sup) != 1 || sup[0].Email != rb[1].Email {
		t.Errorf("suppressions %+v, want the bounced address", sup)
	}
	CheckCounters(t, db)
	for _, id := range []int64{a.ID, b.ID} {
		if rep := verify(t, db, id); !rep.OK() {
			t.Errorf("verify campaign %d: %+v", id, rep.Violations)
		}
	}
}

// A group whose transaction fails records none of it: every row stays
// SENDING under its lease, for recovery.
func TestRecordOutcomesFailedTransaction(t *testing.T) {
	db := MustOpen(t)
	c := MustSending(t, db, 3)
	rs, err := db.Claim(context.Background(), c.ID, 3, "tok", t0.Add(time.Minute), t0)
	if err != nil || len(rs) != 3 {
		t.Fatal(rs, err)
	}
	group := make([]core.Outcome, len(rs))
	for i, r := range rs {
		group[i] = core.Outcome{RecipientID: r.ID, ClaimToken: "tok", Status: core.RecipientSent, At: t0}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if res, err := db.RecordOutcomes(ctx, group); err == nil || res != nil {
		t.Fatalf("record outcomes under an ended context: %v, %v; want the transaction's error and no results", res, err)
	}
	st, _ := db.Campaign(context.Background(), c.ID)
	if st.Stats.Sending != 3 || st.Stats.Sent != 0 {
		t.Fatalf("stats %+v, want all 3 still SENDING", st.Stats)
	}
	CheckCounters(t, db)
}
