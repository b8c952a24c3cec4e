package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/sqlite"
	"github.com/campaignd/campaignd/sdk"
)

// scheduledCampaigns creates n SENDING campaigns of one due recipient each,
// with, when scheduled, a send window, a not-before and an expiry
// (none expired at t0): what the tick's reads of the schedule cost is
// measured on them.
func scheduledCampaigns(b *testing.B, n int, scheduled bool) *sqlite.DB {
	b.Helper()
	ctx := context.Background()
	db := MustOpen(b)
	w, err := core.ParseSendWindow("Mon-Fri 09:00-17:00 Europe/Berlin")
	if err != nil {
		b.Fatal(err)
	}
	nb, exp := t0.Add(-time.Hour), t0.Add(24*time.Hour)
	for i := range n {
		c := &core.Campaign{Name: "c", Sender: "outbox", From: "news@example.org", Subject: "s", Text: "t",
			Headers: []sdk.Header{}, Concurrency: 5, BatchSize: 50}
		if scheduled {
			c.Schedule = core.Schedule{SendWindow: w, NotBefore: &nb, Expires: &exp}
		}
		if err := db.CreateCampaign(ctx, c); err != nil {
			b.Fatal(err)
		}
		MustInsert(b, db, c.ID, Inputs(i, 1))
		MustStatus(b, db, c.ID, core.CampaignDraft, core.CampaignActive)
		if _, err := db.Execute(ctx, c.ID, "b", t0); err != nil {
			b.Fatal(err)
		}
	}
	return db
}

// BenchmarkDueCampaigns10 is the tick's due-campaigns read and schedule
// check of ten campaigns, without and with a schedule: the window,
// not-before and expiry come with the rows it already reads (the window
// parsed from its text), and the check of each is Schedule.SendsAt (see
// core's BenchmarkSendWindowOpen).
func BenchmarkDueCampaigns10(b *testing.B) {
	for _, scheduled := range []bool{false, true} {
		name := "unscheduled"
		if scheduled {
			name = "scheduled"
		}
		b.Run(name, func(b *testing.B) {
			db := scheduledCampaigns(b, 10, scheduled)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				cs, err := db.DueCampaigns(ctx, t0)
				if err != nil || len(cs) != 10 {
					b.Fatalf("%d %v", len(cs), err)
				}
				for _, c := range cs {
					c.SendsAt(t0)
				}
			}
		})
	}
}

// BenchmarkExpireCampaignsNone10 is what expiry adds to a tick when no
// campaign has expired: one read of the campaigns table.
func BenchmarkExpireCampaignsNone10(b *testing.B) {
	db := scheduledCampaigns(b, 10, true)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if got, err := db.ExpireCampaigns(ctx, t0); err != nil || got != nil {
			b.Fatalf("%v %v", got, err)
		}
	}
}
