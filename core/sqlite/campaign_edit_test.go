package sqlite_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/sqlite"
)

func TestUpdateCampaignAsksTransition(t *testing.T) {
	db := MustOpen(t)
	ctx := context.Background()
	c := MustSending(t, db, 2)
	c.Subject = "changed"
	if err := db.UpdateCampaign(ctx, c, t0); Code(err) != core.ECONFLICT {
		t.Fatalf("update of a SENDING campaign: %v", err)
	}
	MustStatus(t, db, c.ID, core.CampaignSending, core.CampaignPaused)
	if err := db.UpdateCampaign(ctx, c, t0); err != nil {
		t.Fatal(err)
	}
	got, err := db.Campaign(ctx, c.ID)
	if err != nil || got.Subject != "changed" || got.Status != core.CampaignPaused || got.PausedFrom != core.CampaignSending ||
		got.Stats.Queued != 2 {
		t.Fatalf("after update: %+v %v", got, err)
	}
	if err := db.UpdateCampaign(ctx, &core.Campaign{ID: 99}, t0); Code(err) != core.ENOTFOUND {
		t.Fatalf("update of an unknown campaign: %v", err)
	}
}

func TestCloneCampaignCopiesRowsInOneRange(t *testing.T) {
	db := MustOpen(t)
	ctx := context.Background()
	src := MustCampaign(t, db, "src")
	MustInsert(t, db, src.ID, Inputs(0, 700))
	other := MustCampaign(t, db, "other") // rows after src's: the clone's come after both
	MustInsert(t, db, other.ID, Inputs(0, 5))
	if err := db.Suppress(ctx, core.Suppression{Email: "USER3@example.com", Source: "operator", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	c := &core.Campaign{Name: "copy", Sender: "outbox", From: "news@example.org", Subject: "S", Text: "T", Concurrency: 1, BatchSize: 1}
	res, err := db.CloneCampaign(ctx, c, src.ID, true, t0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != 699 || res.Suppressed != 1 || c.Stats != (core.Stats{Total: 699, Pending: 699}) || c.Status != core.CampaignDraft {
		t.Fatalf("clone: %+v %+v", res, c)
	}
	got, err := db.Campaign(ctx, c.ID)
	if err != nil || got.Stats != c.Stats || got.Name != "copy" {
		t.Fatalf("stored clone: %+v %v", got, err)
	}
	var all []*core.Recipient
	for after := int64(0); ; {
		rs, err := db.Recipients(ctx, c.ID, core.RecipientFilter{Limit: 500, AfterID: after})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 0 {
			break
		}
		all = append(all, rs...)
		after = rs[len(rs)-1].ID
	}
	if len(all) != 699 || all[0].Email != "user0@example.com" || all[0].Attrs["city"] != "Lyon" || all[1].Name != "User 1" {
		t.Fatalf("cloned rows: %d, first %+v", len(all), all[0])
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID != all[i-1].ID+1 || all[i].Status != core.RecipientPending {
			t.Fatalf("row %d: id %d after %d, %s", i, all[i].ID, all[i-1].ID, all[i].Status)
		}
	}
	// Without recipients, or from nothing.
	bare := &core.Campaign{Name: "bare", Sender: "outbox", From: "news@example.org", Subject: "S", Text: "T", Concurrency: 1, BatchSize: 1}
	if res, err := db.CloneCampaign(ctx, bare, src.ID, false, t0); err != nil || res.Copied != 0 || bare.Stats.Total != 0 {
		t.Fatalf("bare clone: %+v %v", res, err)
	}
	if _, err := db.CloneCampaign(ctx, bare, 999, true, t0); Code(err) != core.ENOTFOUND {
		t.Fatalf("clone of nothing: %v", err)
	}
}

func TestDeleteCampaignRemovesRowsKeepsRecord(t *testing.T) {
	db := MustOpen(t)
	ctx := context.Background()
	keep := MustSending(t, db, 3)
	gone := MustSending(t, db, 4)
	if _, err := db.DeleteCampaign(ctx, gone.ID, "op", false, t0); Code(err) != core.ECONFLICT {
		t.Fatalf("delete of a SENDING campaign: %v", err)
	}
	rs, err := db.Recipients(ctx, gone.ID, core.RecipientFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ApplyEvent(ctx, core.DeliveryEvent{Provider: "p", EventID: "e1", Type: core.EventDelivered,
		CampaignID: gone.ID, RecipientID: rs[0].ID, At: t0}, core.EventEffect{}); err != nil {
		t.Fatal(err)
	}
	claimed, err := db.Claim(ctx, gone.ID, 1, "tok", t0.Add(time.Minute), t0)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v", err)
	}
	MustStatus(t, db, gone.ID, core.CampaignSending, core.CampaignCancelled)
	if _, err := db.DeleteCampaign(ctx, gone.ID, "op", false, t0); Code(err) != core.ECONFLICT {
		t.Fatalf("delete with a send in flight: %v", err)
	}
	if err := db.RecordOutcome(ctx, core.Outcome{RecipientID: claimed[0].ID, CampaignID: gone.ID, ClaimToken: "tok",
		Status: core.RecipientSent, At: t0}); err != nil {
		t.Fatal(err)
	}
	dry, err := db.DeleteCampaign(ctx, gone.ID, "op", true, t0)
	if err != nil || dry.Recipients != 4 || dry.Executions != 1 || dry.Events != 1 || dry.Name != "sending" {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	if _, err := db.Campaign(ctx, gone.ID); err != nil {
		t.Fatalf("dry run deleted: %v", err)
	}
	res, err := db.DeleteCampaign(ctx, gone.ID, "op", false, t0)
	if err != nil || res.Recipients != 4 || res.Status != core.CampaignCancelled {
		t.Fatalf("delete: %+v %v", res, err)
	}
	if _, err := db.Campaign(ctx, gone.ID); Code(err) != core.ENOTFOUND {
		t.Fatalf("campaign after delete: %v", err)
	}
	if _, err := db.Recipient(ctx, rs[0].ID); Code(err) != core.ENOTFOUND {
		t.Fatalf("recipient after delete: %v", err)
	}
	if evs, err := db.Events(ctx, rs[0].ID); err != nil || len(evs) != 0 {
		t.Fatalf("events after delete: %+v %v", evs, err)
	}
	if xs, err := db.Executions(ctx, 0, 10); err != nil || len(xs) != 1 || xs[0].CampaignID != keep.ID {
		t.Fatalf("executions after delete: %+v %v", xs, err)
	}
	ds, err := db.DeletedCampaigns(ctx, 0)
	if err != nil || len(ds) != 1 || ds[0].ID != gone.ID || ds[0].DeletedBy != "op" || ds[0].Stats.Total != 4 ||
		ds[0].Stats.Failed != 3 || ds[0].Stats.Sent != 1 || ds[0].Status != core.CampaignCancelled || !ds[0].DeletedAt.Equal(t0) {
		t.Fatalf("deleted record: %+v %v", ds, err)
	}
	// The highest id was deleted: the next campaign still gets a new one.
	next := MustCampaign(t, db, "next")
	if next.ID <= gone.ID {
		t.Fatalf("new campaign id %d reuses deleted %d", next.ID, gone.ID)
	}
	if _, err := db.DeleteCampaign(ctx, gone.ID, "op", false, t0); Code(err) != core.ENOTFOUND {
		t.Fatalf("second delete: %v", err)
	}
	if k, err := db.Campaign(ctx, keep.ID); err != nil || k.Stats.Queued != 3 {
		t.Fatalf("the other campaign: %+v %v", k, err)
	}
	var _ core.Store = (*sqlite.DB)(nil)
}

// TestCloneQueryPlan: the copy walks the source's id range in order and
// checks the suppression list by its key: no scan, no sort.
func TestCloneQueryPlan(t *testing.T) {
	db := MustOpen(t)
	c := MustSending(t, db, 50)
	plan := queryPlan(t, db, sqlite.CloneRecipientsSQL, 99, "PENDING", 1, 1, 100, c.ID)
	for _, w := range []string{"SEARCH r USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)", "SEARCH s USING PRIMARY KEY (email=?)"} {
		if !strings.Contains(plan, w) {
			t.Errorf("plan lacks %q:\n%s", w, plan)
		}
	}
	for _, bad := range []string{"SCAN", "TEMP B-TREE"} {
		if strings.Contains(plan, bad) {
			t.Errorf("plan has %q:\n%s", bad, plan)
		}
	}
}
