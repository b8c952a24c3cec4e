package sqlite_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

// ExpireCampaigns fails the QUEUED recipients of an expired SENDING
// campaign with class expired, moving the counters, leaves those in flight
// and every other campaign alone, and only reads when nothing has expired.
func TestExpireCampaigns(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	exp := t0.Add(time.Hour)
	newCampaign := func(name string, expires *time.Time, n int, execute bool) *core.Campaign {
		c := &core.Campaign{Name: name, Sender: "outbox", From: "news@example.org", Subject: "s", Text: "t",
			Concurrency: 5, BatchSize: 50, Schedule: core.Schedule{Expires: expires}}
		if err := db.CreateCampaign(ctx, c); err != nil {
			t.Fatal(err)
		}
		MustInsert(t, db, c.ID, Inputs(0, n))
		MustStatus(t, db, c.ID, core.CampaignDraft, core.CampaignActive)
		if execute {
			if _, err := db.Execute(ctx, c.ID, "ann", t0); err != nil {
				t.Fatal(err)
			}
		}
		return c
	}
	c := newCampaign("expiring", &exp, 10, true)
	active := newCampaign("not executed", &exp, 4, false)
	forever := newCampaign("no expiry", nil, 6, true)
	inFlight, err := db.Claim(ctx, c.ID, 3, "tok", t0.Add(2*time.Hour), t0)
	if err != nil || len(inFlight) != 3 {
		t.Fatalf("claim: %d %v", len(inFlight), err)
	}
	if got, err := db.ExpireCampaigns(ctx, exp.Add(-time.Millisecond)); err != nil || got != nil {
		t.Fatalf("before the expiry: %v %v", got, err)
	}
	got, err := db.ExpireCampaigns(ctx, exp)
	if err != nil || len(got) != 1 || got[c.ID] != 7 {
		t.Fatalf("at the expiry: %v %v", got, err)
	}
	if st := mustStats(t, db, c.ID); st != (core.Stats{Total: 10, Sending: 3, Failed: 7}) {
		t.Fatalf("expired campaign: %+v", st)
	}
	if st := mustStats(t, db, active.ID); st.Pending != 4 {
		t.Fatalf("ACTIVE campaign touched: %+v", st)
	}
	if st := mustStats(t, db, forever.ID); st.Queued != 6 {
		t.Fatalf("campaign without expiry touched: %+v", st)
	}
	failed, err := db.Recipients(ctx, c.ID, core.RecipientFilter{Status: core.RecipientFailed, Limit: 100})
	if err != nil || len(failed) != 7 {
		t.Fatalf("failed rows: %d %v", len(failed), err)
	}
	for _, r := range failed {
		if r.LastErrorClass != core.ClassExpired || !strings.Contains(r.LastError, "--expires") {
			t.Fatalf("%s: %q %q", r.Email, r.LastErrorClass, r.LastError)
		}
	}
	if got, err := db.ExpireCampaigns(ctx, exp.Add(time.Hour)); err != nil || got != nil {
		t.Fatalf("again: %v %v", got, err)
	}
	// A retry by class requeues them (the engine refuses it until the
	// expiry is extended).
	if n, err := db.Retry(ctx, c.ID, core.ClassExpired, 0, exp); err != nil || n != 7 {
		t.Fatalf("retry: %d %v", n, err)
	}
}

// The schedule is stored with the campaign, changed alone by
// UpdateSchedule in any state but CANCELLED, and carried by a clone.
func TestScheduleStored(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	w, err := core.ParseSendWindow("Mon-Fri 09:00-17:00 Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	nb, exp := t0.Add(time.Hour), t0.Add(48*time.Hour)
	c := &core.Campaign{Name: "c", Sender: "outbox", From: "news@example.org", Subject: "s", Text: "t",
		Concurrency: 5, BatchSize: 50, Schedule: core.Schedule{SendWindow: w, NotBefore: &nb, Expires: &exp}}
	if err := db.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := db.Campaign(ctx, c.ID)
	if err != nil || got.SendWindow.String() != w.String() || !got.NotBefore.Equal(nb) || !got.Expires.Equal(exp) {
		t.Fatalf("read back: %+v %v", got.Schedule, err)
	}
	MustInsert(t, db, c.ID, Inputs(0, 2))
	MustStatus(t, db, c.ID, core.CampaignDraft, core.CampaignActive)
	if _, err := db.Execute(ctx, c.ID, "ann", t0); err != nil {
		t.Fatal(err)
	}
	later := exp.Add(time.Hour)
	if err := db.UpdateSchedule(ctx, c.ID, core.Schedule{Expires: &later}, t0); err != nil {
		t.Fatalf("reschedule a SENDING campaign: %v", err)
	}
	got, _ = db.Campaign(ctx, c.ID)
	if got.SendWindow != nil || got.NotBefore != nil || !got.Expires.Equal(later) || got.Status != core.CampaignSending ||
		got.Subject != "s" || got.Stats.Queued != 2 {
		t.Fatalf("after reschedule: %+v", got)
	}
	clone := &core.Campaign{Name: "copy", Sender: "outbox", From: "news@example.org", Subject: "s", Text: "t",
		Concurrency: 5, BatchSize: 50, Schedule: got.Schedule}
	if _, err := db.CloneCampaign(ctx, clone, c.ID, false, t0); err != nil {
		t.Fatal(err)
	}
	if cc, _ := db.Campaign(ctx, clone.ID); cc.Expires == nil || !cc.Expires.Equal(later) {
		t.Fatalf("clone's schedule: %+v", cc.Schedule)
	}
	MustStatus(t, db, c.ID, core.CampaignSending, core.CampaignCancelled)
	if err := db.UpdateSchedule(ctx, c.ID, core.Schedule{}, t0); Code(err) != core.ECONFLICT {
		t.Fatalf("reschedule a CANCELLED campaign: %v", err)
	}
	if err := db.UpdateSchedule(ctx, 999, core.Schedule{}, t0); Code(err) != core.ENOTFOUND {
		t.Fatalf("reschedule an unknown campaign: %v", err)
	}
}

func mustStats(t *testing.T, db interface {
	Campaign(context.Context, int64) (*core.Campaign, error)
}, id int64) core.Stats {
	t.Helper()
	c, err := db.Campaign(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c.Stats
}

// A recipient whose last send's outcome is unknown (its lease expired and
// the resend policy requeued it) may have been delivered: expiring it says
// so, rather than "not sent".
func TestExpireCampaignsKeepsInDoubt(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	exp := t0.Add(time.Hour)
	c := &core.Campaign{Name: "expiring", Sender: "outbox", From: "news@example.org", Subject: "s", Text: "t",
		Concurrency: 5, BatchSize: 50, Schedule: core.Schedule{Expires: &exp}}
	if err := db.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	MustInsert(t, db, c.ID, Inputs(0, 3))
	MustStatus(t, db, c.ID, core.CampaignDraft, core.CampaignActive)
	if _, err := db.Execute(ctx, c.ID, "ann", t0); err != nil {
		t.Fatal(err)
	}
	if rs, err := db.Claim(ctx, c.ID, 2, "tok", t0.Add(time.Minute), t0); err != nil || len(rs) != 2 {
		t.Fatalf("claim: %d %v", len(rs), err)
	}
	if rec, err := db.RecoverLeases(ctx, exp, core.InDoubtResend.ExpiredLeases(5)); err != nil || rec.Requeued != 2 {
		t.Fatalf("recover: %+v %v", rec, err)
	}
	if got, err := db.ExpireCampaigns(ctx, exp); err != nil || got[c.ID] != 3 {
		t.Fatalf("expire: %v %v", got, err)
	}
	var inDoubt, notSent int
	for _, r := range mustRecipients(t, db, c.ID) {
		if r.Status != core.RecipientFailed || r.LastErrorClass != core.ClassExpired {
			t.Fatalf("%s: %s %q, want FAILED expired", r.Email, r.Status, r.LastErrorClass)
		}
		switch {
		case r.Attempts > 0 && strings.Contains(r.LastError, "unknown") && !strings.HasPrefix(r.LastError, "not sent"):
			inDoubt++
		case r.Attempts == 0 && strings.HasPrefix(r.LastError, "not sent"):
			notSent++
		default:
			t.Errorf("%s (attempts %d): %q", r.Email, r.Attempts, r.LastError)
		}
	}
	if inDoubt != 2 || notSent != 1 {
		t.Fatalf("%d in doubt, %d not sent; want 2 and 1", inDoubt, notSent)
	}
}
