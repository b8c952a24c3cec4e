package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

func TestSuppressions(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	if err := db.Suppress(ctx, core.Suppression{Email: "Ann <Ann@Example.COM>", Reason: "complaint", Source: "operator", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.Suppress(ctx, core.Suppression{Email: "bob@example.com", Reason: "unsubscribed", Source: "unsubscribe", CreatedAt: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	// Updating keeps the first listing time and the stored spelling.
	if err := db.Suppress(ctx, core.Suppression{Email: "ann@example.com", Reason: "bounced", Source: "bounce", CreatedAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	list, err := db.Suppressions(ctx, 0)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %v, %v", list, err)
	}
	if *list[1] != (core.Suppression{Email: "Ann@example.com", Reason: "bounced", Source: "bounce", CreatedAt: t0}) || list[0].Email != "bob@example.com" {
		t.Fatalf("list %+v %+v", *list[0], *list[1])
	}
	if err := db.Suppress(ctx, core.Suppression{Email: "not an address"}); core.ErrorCode(err) != core.EINVALID {
		t.Fatalf("bad address: %v", err)
	}
	if err := db.Unsuppress(ctx, "ANN@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := db.Unsuppress(ctx, "ann@example.com"); core.ErrorCode(err) != core.ENOTFOUND {
		t.Fatalf("second unsuppress: %v, want ENOTFOUND", err)
	}
	if list, _ := db.Suppressions(ctx, 1); len(list) != 1 || list[0].Email != "bob@example.com" {
		t.Fatalf("after unsuppress: %+v", list)
	}
}

// BenchmarkSuppressionCheck measures both uses of the "which of these
// addresses are suppressed" query against a 100,000-address list: the
// import's per-chunk check inside InsertRecipients (10,000 rows, 1 in 20
// listed; rows/s counts only the time inside InsertRecipients) and the
// claim-time re-check of a 50-address batch (SuppressedAmong).
func BenchmarkSuppressionCheck(b *testing.B) {
	ctx := context.Background()
	const listed, chunk = 100_000, 10_000
	path := filepath.Join(b.TempDir(), "bench.db")
	db := MustOpenPath(b, path)
	// Filled in one transaction beside the store: one Suppress call per
	// address would cost an fsync each.
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		b.Fatal(err)
	}
	tx, err := raw.Begin()
	if err != nil {
		b.Fatal(err)
	}
	for k := range listed {
		if _, err := tx.Exec(`INSERT INTO suppressions (email, source, created_at) VALUES (?, 'import', 0)`,
			fmt.Sprintf("r%09d@example.com", k*20)); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	raw.Close()
	b.Run("insert-10000", func(b *testing.B) {
		buf := make([]core.RecipientInput, chunk)
		var n int
		for b.Loop() {
			b.StopTimer()
			c := MustCampaign(b, db, "bench")
			benchRows(buf, 0, false)
			b.StartTimer()
			res, err := db.InsertRecipients(ctx, c.ID, buf, t0)
			if err != nil || res.Suppressed != chunk/20 {
				b.Fatalf("%+v %v", res, err)
			}
			n += chunk
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("claim-50", func(b *testing.B) {
		emails := make([]string, 50)
		for i := range emails {
			emails[i] = fmt.Sprintf("r%09d@example.com", i*7)
		}
		for b.Loop() {
			got, err := db.SuppressedAmong(ctx, emails)
			if err != nil || len(got) != 3 {
				b.Fatalf("%v %v", got, err)
			}
		}
	})
}
