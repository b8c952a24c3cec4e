package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/sqlite"
)

// TestProgressMigrationBackfill: the upgrade's backfill of the minute
// counts agrees with what ticks count at runtime, where a cancellation
// (FAILED, class cancelled) adds nothing: only real failures and bounces.
func TestProgressMigrationBackfill(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	db := MustOpenPath(t, path)
	c := MustCampaign(t, db, "backfill")
	MustInsert(t, db, c.ID, []core.RecipientInput{{Email: "a@example.org"}, {Email: "b@example.org"},
		{Email: "c@example.org"}, {Email: "d@example.org"}, {Email: "e@example.org"}})
	// What a build before 0006 left: outcomes in one minute, and no
	// minute rows or progress columns.
	raw := rawDB(t, path)
	const at = 1_700_000_040_000
	for _, q := range []string{
		`UPDATE recipients SET status = 'SENT', sent_at = 1700000040000, updated_at = 1700000040000 WHERE email = 'a@example.org'`,
		`UPDATE recipients SET status = 'FAILED', last_error_class = 'permanent', updated_at = 1700000040000 WHERE email = 'b@example.org'`,
		`UPDATE recipients SET status = 'FAILED', last_error_class = 'cancelled', updated_at = 1700000040000 WHERE email IN ('c@example.org', 'd@example.org')`,
		`UPDATE recipients SET status = 'BOUNCED', last_error_class = 'bounce', updated_at = 1700000040000 WHERE email = 'e@example.org'`,
		`DROP TABLE campaign_minutes`,
		`ALTER TABLE campaigns DROP COLUMN started_at`,
		`ALTER TABLE campaigns DROP COLUMN finished_at`,
		`ALTER TABLE campaigns DROP COLUMN last_tick_at`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := sqlite.ReapplyMigration(ctx, db, "progress"); err != nil {
		t.Fatal(err)
	}
	var sent, failed, bounced int
	if err := raw.QueryRow(`SELECT sent, failed, bounced FROM campaign_minutes WHERE campaign_id = ? AND minute = ?`, c.ID, at/60000).
		Scan(&sent, &failed, &bounced); err != nil {
		t.Fatal(err)
	}
	if sent != 1 || failed != 1 || bounced != 1 {
		t.Errorf("backfilled minute: sent %d failed %d bounced %d, want 1 1 1 (cancellations are not failures)", sent, failed, bounced)
	}
}
