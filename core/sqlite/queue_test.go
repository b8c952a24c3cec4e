package sqlite_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/sqlite"
)

func TestExecute(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	c := MustCampaign(t, db, "x")
	other := MustCampaign(t, db, "other")
	MustInsert(t, db, c.ID, Inputs(0, 700))
	MustInsert(t, db, other.ID, Inputs(0, 5)) // interleaved ids must stay PENDING
	MustInsert(t, db, c.ID, Inputs(700, 300))

	if _, err := db.Execute(ctx, c.ID, "ann", t0); Code(err) != core.ECONFLICT || !strings.Contains(err.Error(), "DRAFT") {
		t.Fatalf("execute of a DRAFT campaign: %v, want ECONFLICT naming DRAFT", err)
	}
	if _, err := db.Execute(ctx, 999, "ann", t0); Code(err) != core.ENOTFOUND {
		t.Fatalf("execute of an unknown campaign: %v, want ENOTFOUND", err)
	}
	MustStatus(t, db, c.ID, core.CampaignDraft, core.CampaignActive)
	ex, err := db.Execute(ctx, c.ID, "ann", t0)
	if err != nil {
		t.Fatal(err)
	}
	if ex.ID == 0 || ex.Queued != 1000 || ex.Status != core.ExecutionCompleted || ex.By != "ann" || !ex.At.Equal(t0) || ex.CampaignID != c.ID {
		t.Fatalf("execution %+v", ex)
	}
	got, _ := db.Campaign(ctx, c.ID)
	if got.Status != core.CampaignSending || got.Stats != (core.Stats{Total: 1000, Queued: 1000}) {
		t.Fatalf("after execute: %s %+v", got.Status, got.Stats)
	}
	if o, _ := db.Campaign(ctx, other.ID); o.Stats.Pending != 5 {
		t.Fatalf("other campaign touched: %+v", o.Stats)
	}
	rs, _ := db.Recipients(ctx, c.ID, core.RecipientFilter{Limit: 1})
	if r := rs[0]; r.Status != core.RecipientQueued || !r.QueuedAt.Equal(t0) || !r.NextAttemptAt.Equal(t0) {
		t.Fatalf("queued recipient %+v", r)
	}
	if _, err := db.Execute(ctx, c.ID, "ann", t0); Code(err) != core.ECONFLICT || !strings.Contains(err.Error(), "SENDING") {
		t.Fatalf("second execute: %v, want ECONFLICT naming SENDING", err)
	}
	CheckCounters(t, db)

	failed, err := db.RecordFailedExecution(ctx, other.ID, "bob", "sender not configured", t0)
	if err != nil || failed.Status != core.ExecutionFailed || failed.Error != "sender not configured" {
		t.Fatalf("failed execution %+v, %v", failed, err)
	}
	if _, err := db.RecordFailedExecution(ctx, 999, "bob", "x", t0); Code(err) != core.ENOTFOUND {
		t.Fatalf("failed execution of an unknown campaign: %v", err)
	}
	all, err := db.Executions(ctx, 0, 0)
	if err != nil || len(all) != 2 || all[0].ID != failed.ID || all[1].ID != ex.ID {
		t.Fatalf("executions newest first: %+v, %v", all, err)
	}
	mine, err := db.Executions(ctx, c.ID, 10)
	if err != nil || len(mine) != 1 || *mine[0] != *ex {
		t.Fatalf("executions of %d: %+v, %v", c.ID, mine, err)
	}
	if _, err := db.Executions(ctx, 999, 10); Code(err) != core.ENOTFOUND {
		t.Fatalf("executions of an unknown campaign: %v", err)
	}
}

func TestExecuteEmptyCampaign(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	c := MustCampaign(t, db, "empty")
	MustStatus(t, db, c.ID, core.CampaignDraft, core.CampaignActive)
	ex, err := db.Execute(ctx, c.ID, "x", t0)
	if err != nil || ex.Queued != 0 {
		t.Fatalf("execute empty: %+v, %v", ex, err)
	}
	ids, err := db.CompleteCampaigns(ctx, t0)
	if err != nil || len(ids) != 1 || ids[0] != c.ID {
		t.Fatalf("complete: %v, %v", ids, err)
	}
}

func TestClaim(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	c := MustSending(t, db, 10)
	lease := t0.Add(time.Minute)

	// Two rows pushed into the future are not due; the rest come oldest first.
	first, err := db.Claim(ctx, c.ID, 2, "tok-a", lease, t0)
	if err != nil || len(first) != 2 {
		t.Fatalf("claim: %v, %v", first, err)
	}
	for _, r := range first {
		if err := db.RecordOutcome(ctx, core.Outcome{RecipientID: r.ID, CampaignID: c.ID, ClaimToken: "tok-a",
			Status: core.RecipientQueued, At: t0, NextAttemptAt: t0.Add(time.Hour), ErrorClass: "transient", Error: "421 later", ErrorCode: 421}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.Claim(ctx, c.ID, 50, "tok-b", lease, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 8 {
		t.Fatalf("claimed %d, want the 8 due", len(got))
	}
	for i, r := range got {
		if r.Status != core.RecipientSending || r.ClaimToken != "tok-b" || !r.LeaseUntil.Equal(lease) || r.Attempts != 1 || !r.UpdatedAt.Equal(t0) {
			t.Fatalf("claimed row %+v", r)
		}
		if i > 0 && r.ID <= got[i-1].ID {
			t.Fatalf("claim order: %d after %d", r.ID, got[i-1].ID)
		}
	}
	if again, err := db.Claim(ctx, c.ID, 50, "tok-c", lease, t0); err != nil || len(again) != 0 {
		t.Fatalf("second claim: %d rows, %v", len(again), err)
	}
	st, _ := db.Campaign(ctx, c.ID)
	if want := (core.Stats{Total: 10, Queued: 2, Sending: 8}); st.Stats != want {
		t.Fatalf("stats %+v, want %+v", st.Stats, want)
	}
	// Once due, the retried rows come back, attempts counted.
	later, err := db.Claim(ctx, c.ID, 50, "tok-d", t0.Add(2*time.Hour), t0.Add(time.Hour))
	if err != nil || len(later) != 2 || later[0].Attempts != 2 || later[0].LastErrorCode != 421 || later[0].LastErrorClass != "transient" {
		t.Fatalf("claim of retried rows: %+v, %v", later, err)
	}
	CheckCounters(t, db)

	for _, bad := range []struct {
		n     int
		token string
		lease time.Time
	}{{0, "t", lease}, {5, "", lease}, {5, "t", t0}} {
		if _, err := db.Claim(ctx, c.ID, bad.n, bad.token, bad.lease, t0); Code(err) != core.EINVALID {
			t.Fatalf("claim(%d, %q, %v): %v, want EINVALID", bad.n, bad.token, bad.lease, err)
		}
	}
}

func TestClaimOrderByNextAttempt(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	c := MustSending(t, db, 3)
	rs, _ := db.Claim(ctx, c.ID, 3, "t1", t0.Add(time.Minute), t0)
	// Requeue the first row earlier than the others: it comes first.
	due := []time.Time{t0.Add(-time.Minute), t0.Add(-time.Hour), t0.Add(-time.Second)}
	for i, r := range rs {
		if err := db.RecordOutcome(ctx, core.Outcome{RecipientID: r.ID, ClaimToken: "t1", Status: core.RecipientQueued, At: t0, NextAttemptAt: due[i]}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := db.Claim(ctx, c.ID, 3, "t2", t0.Add(time.Minute), t0)
	order := []int64{got[0].ID, got[1].ID, got[2].ID}
	want := []int64{rs[1].ID, rs[0].ID, rs[2].ID}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("claim order %v, want %v (by next_attempt_at)", order, want)
	}
}

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
	if _, err := db.RecoverLeases(ctx, t0.Add(2*time.Minute), core.InDoubtResend, 5); err != nil {
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
	} {
		t.Run(fmt.Sprintf("%s-%d", tc.policy, tc.maxAttempts), func(t *testing.T) {
			db := MustOpen(t)
			c := MustSending(t, db, 6)
			expired, _ := db.Claim(ctx, c.ID, 4, "dead", t0.Add(time.Minute), t0)
			live, _ := db.Claim(ctx, c.ID, 2, "alive", t0.Add(time.Hour), t0)

			// Nothing has expired yet: nothing happens.
			if got, err := db.RecoverLeases(ctx, t0.Add(time.Minute), tc.policy, tc.maxAttempts); err != nil || got != (core.LeaseRecovery{}) {
				t.Fatalf("recover before expiry: %+v, %v", got, err)
			}
			now := t0.Add(2 * time.Minute)
			got, err := db.RecoverLeases(ctx, now, tc.policy, tc.maxAttempts)
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
				if n, err := db.Retry(ctx, c.ID, core.ClassInDoubt, now); err != nil || n != tc.held {
					t.Fatalf("retry in_doubt: %d, %v", n, err)
				}
				CheckCounters(t, db)
			}
		})
	}
	db := MustOpen(t)
	if _, err := db.RecoverLeases(ctx, t0, "shrug", 1); Code(err) != core.EINVALID {
		t.Fatalf("unknown policy: %v, want EINVALID", err)
	}
}

func TestRetry(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	c := MustSending(t, db, 5)
	rs, _ := db.Claim(ctx, c.ID, 5, "tok", t0.Add(time.Minute), t0)
	classes := []string{"permanent", "transient", "permanent"}
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
	if n, err := db.Retry(ctx, c.ID, "permanent", later); err != nil || n != 2 {
		t.Fatalf("retry permanent: %d, %v", n, err)
	}
	r, _ := db.Recipient(ctx, rs[0].ID)
	if r.Status != core.RecipientQueued || r.Attempts != 0 || !r.NextAttemptAt.Equal(later) || r.LastErrorClass != "permanent" {
		t.Fatalf("retried row %+v", r)
	}
	if n, err := db.Retry(ctx, c.ID, "", later); err != nil || n != 1 {
		t.Fatalf("retry all: %d, %v", n, err)
	}
	if n, err := db.Retry(ctx, c.ID, "", later); err != nil || n != 0 {
		t.Fatalf("retry again: %d, %v", n, err)
	}
	if _, err := db.Retry(ctx, 999, "", later); Code(err) != core.ENOTFOUND {
		t.Fatalf("retry unknown campaign: %v", err)
	}
	st, _ := db.Campaign(ctx, c.ID)
	if want := (core.Stats{Total: 5, Queued: 3, Sending: 1, Bounced: 1}); st.Stats != want {
		t.Fatalf("stats %+v, want %+v", st.Stats, want)
	}
	CheckCounters(t, db)
}

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
	if q[0].CampaignID != a.ID || q[0].Status != core.CampaignPaused || q[0].DueNow != 2 || q[0].Waiting != 0 || q[0].InFlight != 1 ||
		q[0].NextAttempt == nil || !q[0].NextAttempt.Equal(t0) || q[0].CampaignName != "sending" {
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

// TestConcurrentClaimers hammers one queue from two handles on the same file
// (as two processes would) and checks no row is handed out twice.
func TestConcurrentClaimers(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/c.db"
	db1 := MustOpenPath(t, path)
	db2 := MustOpenPath(t, path)
	const n = 3000
	c := MustSending(t, db1, n)

	var mu sync.Mutex
	seen := map[int64]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		db := db1
		if w%2 == 1 {
			db = db2
		}
		wg.Add(1)
		go func(w int, db *sqlite.DB) {
			defer wg.Done()
			for i := 0; ; i++ {
				token := fmt.Sprintf("w%d-%d", w, i)
				rs, err := db.Claim(ctx, c.ID, 7, token, t0.Add(time.Hour), t0)
				if err != nil {
					errs <- err
					return
				}
				if len(rs) == 0 {
					return
				}
				mu.Lock()
				for _, r := range rs {
					if prev, dup := seen[r.ID]; dup {
						mu.Unlock()
						errs <- fmt.Errorf("recipient %d claimed by %s and %s", r.ID, prev, token)
						return
					}
					seen[r.ID] = token
				}
				mu.Unlock()
				for _, r := range rs {
					if err := db.RecordOutcome(ctx, core.Outcome{RecipientID: r.ID, ClaimToken: token, Status: core.RecipientSent, At: t0}); err != nil {
						errs <- err
						return
					}
				}
			}
		}(w, db)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("claimed %d distinct rows, want %d", len(seen), n)
	}
	st, _ := db2.Campaign(ctx, c.ID)
	if st.Stats != (core.Stats{Total: n, Sent: n}) {
		t.Fatalf("stats %+v", st.Stats)
	}
	CheckCounters(t, db1)
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
		if _, err := db.RecoverLeases(ctx, now, policy, 3); err != nil {
			t.Fatal(err)
		}
		if round%4 == 0 {
			if _, err := db.Retry(ctx, a.ID, "", now); err != nil {
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
