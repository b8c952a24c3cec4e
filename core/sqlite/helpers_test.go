package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/sqlite"
)

// t0 is the tests' fixed clock.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// MustOpen opens a fresh database in a temporary directory and closes it
// when the test ends.
func MustOpen(tb testing.TB, opts ...sqlite.Option) *sqlite.DB {
	tb.Helper()
	return MustOpenPath(tb, filepath.Join(tb.TempDir(), "campaignd.db"), opts...)
}

// MustOpenPath opens the database at path and closes it when the test ends.
func MustOpenPath(tb testing.TB, path string, opts ...sqlite.Option) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), path, opts...)
	if err != nil {
		tb.Fatalf("open %s: %v", path, err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return db
}

// MustCampaign creates a campaign and moves it to status (via the legal
// path: DRAFT, ACTIVE, SENDING by Execute, PAUSED from ACTIVE).
func MustCampaign(tb testing.TB, db *sqlite.DB, name string) *core.Campaign {
	tb.Helper()
	c := &core.Campaign{Name: name, Sender: "outbox", From: "news@example.org", Subject: "Hello {{.Name}}",
		Text: "Hi", Concurrency: 5, BatchSize: 50}
	if err := db.CreateCampaign(context.Background(), c); err != nil {
		tb.Fatalf("create campaign: %v", err)
	}
	return c
}

// MustStatus moves a campaign between statuses.
func MustStatus(tb testing.TB, db *sqlite.DB, id int64, from, to core.CampaignStatus) {
	tb.Helper()
	if err := db.SetCampaignStatus(context.Background(), id, from, to, t0); err != nil {
		tb.Fatalf("campaign %d %s -> %s: %v", id, from, to, err)
	}
}

// MustInsert inserts rs and returns the result.
func MustInsert(tb testing.TB, db *sqlite.DB, id int64, rs []core.RecipientInput) core.InsertResult {
	tb.Helper()
	res, err := db.InsertRecipients(context.Background(), id, rs, t0)
	if err != nil {
		tb.Fatalf("insert recipients: %v", err)
	}
	return res
}

// Inputs returns n recipients numbered from start.
func Inputs(start, n int) []core.RecipientInput {
	rs := make([]core.RecipientInput, n)
	for i := range rs {
		k := start + i
		rs[i] = core.RecipientInput{Email: fmt.Sprintf("user%d@example.com", k), Name: fmt.Sprintf("User %d", k)}
		if k%2 == 0 {
			rs[i].Attrs = map[string]string{"city": "Lyon", "plan": fmt.Sprint(k % 7)}
		}
	}
	return rs
}

// MustSending creates a campaign with n recipients and executes it.
func MustSending(tb testing.TB, db *sqlite.DB, n int) *core.Campaign {
	tb.Helper()
	c := MustCampaign(tb, db, "sending")
	MustInsert(tb, db, c.ID, Inputs(0, n))
	MustStatus(tb, db, c.ID, core.CampaignDraft, core.CampaignActive)
	if _, err := db.Execute(context.Background(), c.ID, "test", t0); err != nil {
		tb.Fatalf("execute: %v", err)
	}
	return c
}

// Code returns err's core code.
func Code(err error) string { return core.ErrorCode(err) }
