package sqlite_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/sdk"
)

func TestCreateAndReadCampaign(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	in := &core.Campaign{Name: "Spring", Sender: "smtp", From: "News <news@example.org>", ReplyTo: "help@example.org",
		Subject: "Hi {{.Name}}", Text: "text", HTML: "<p>html</p>", Concurrency: 7, BatchSize: 20,
		Headers: []sdk.Header{{Name: "X-Campaign", Value: "spring"}, {Name: "Precedence", Value: "bulk"}},
		Status:  core.CampaignSending, Stats: core.Stats{Total: 99}}
	before := time.Now().Add(-time.Second)
	if err := db.CreateCampaign(ctx, in); err != nil {
		t.Fatal(err)
	}
	if in.ID == 0 || in.Status != core.CampaignDraft || in.CreatedAt.Before(before) || !in.UpdatedAt.Equal(in.CreatedAt) {
		t.Fatalf("create did not set id/status/times: %+v", in)
	}
	if in.Stats != (core.Stats{}) {
		t.Fatalf("create kept stats %+v", in.Stats)
	}
	got, err := db.Campaign(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("read back\n got %+v\nwant %+v", got, in)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Fatalf("times not UTC: %v", got.CreatedAt.Location())
	}

	second := MustCampaign(t, db, "second")
	all, err := db.Campaigns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != second.ID || all[1].ID != in.ID {
		t.Fatalf("campaigns not newest first: %v", all)
	}
	if _, err := db.Campaign(ctx, 12345); Code(err) != core.ENOTFOUND {
		t.Fatalf("unknown campaign: %v, want ENOTFOUND", err)
	}
	if err := db.CreateCampaign(ctx, nil); Code(err) != core.EINVALID {
		t.Fatalf("nil campaign: %v, want EINVALID", err)
	}
}

func TestSetCampaignStatus(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	c := MustCampaign(t, db, "s")
	later := t0.Add(time.Hour)
	if err := db.SetCampaignStatus(ctx, c.ID, core.CampaignDraft, core.CampaignActive, later); err != nil {
		t.Fatal(err)
	}
	got, _ := db.Campaign(ctx, c.ID)
	if got.Status != core.CampaignActive || !got.UpdatedAt.Equal(later) {
		t.Fatalf("after activate: %s updated %v", got.Status, got.UpdatedAt)
	}

	// Lost compare-and-set: names the actual status, changes nothing.
	err := db.SetCampaignStatus(ctx, c.ID, core.CampaignDraft, core.CampaignActive, later)
	if Code(err) != core.ECONFLICT || !strings.Contains(err.Error(), "ACTIVE") || !strings.Contains(err.Error(), "DRAFT") {
		t.Fatalf("stale from: %v, want ECONFLICT naming ACTIVE and DRAFT", err)
	}
	if err := db.SetCampaignStatus(ctx, 999, core.CampaignDraft, core.CampaignActive, later); Code(err) != core.ENOTFOUND {
		t.Fatalf("unknown campaign: %v, want ENOTFOUND", err)
	}
	if err := db.SetCampaignStatus(ctx, c.ID, core.CampaignActive, "BOGUS", later); Code(err) != core.EINVALID {
		t.Fatalf("unknown status: %v, want EINVALID", err)
	}

	// PAUSED records where it came from; leaving PAUSED clears it.
	MustStatus(t, db, c.ID, core.CampaignActive, core.CampaignPaused)
	if got, _ = db.Campaign(ctx, c.ID); got.PausedFrom != core.CampaignActive {
		t.Fatalf("paused_from %q, want ACTIVE", got.PausedFrom)
	}
	MustStatus(t, db, c.ID, core.CampaignPaused, core.CampaignActive)
	if got, _ = db.Campaign(ctx, c.ID); got.PausedFrom != "" || got.Status != core.CampaignActive {
		t.Fatalf("after resume: %s paused_from %q", got.Status, got.PausedFrom)
	}
}
