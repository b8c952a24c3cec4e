package sqlite_test

import (
	"context"
	"strings"
	"testing"

	"github.com/campaignd/campaignd/core"
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
