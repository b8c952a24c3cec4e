package sqlite_test

import (
	"strings"
	"testing"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/sqlite"
)

// queryPlan returns the EXPLAIN QUERY PLAN lines of stmt.
func queryPlan(t *testing.T, db *sqlite.DB, stmt string, args ...any) string {
	t.Helper()
	rows, err := rawDB(t, db.Path()).Query("EXPLAIN QUERY PLAN "+stmt, args...)
	if err != nil {
		t.Fatalf("explain: %v\n%s", err, stmt)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	return strings.Join(lines, "\n")
}

func TestQueryPlans(t *testing.T) {
	db := MustOpen(t)
	c := MustSending(t, db, 50)
	for _, tc := range []struct {
		name string
		stmt string
		args []any
		want []string // each must appear
	}{
		// The claim walks the partial index in order: no scan, no sort.
		{"claim", sqlite.ClaimSQL, []any{1, "t", 1, c.ID, 1, 50},
			[]string{"USING COVERING INDEX recipients_claim (campaign_id=? AND next_attempt_at<?)", "USING INTEGER PRIMARY KEY (rowid=?)"}},
		// Execute walks the campaign's id range.
		{"execute", sqlite.ExecuteSQL, []any{1, 1, 100, c.ID},
			[]string{"SEARCH recipients USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"}},
		{"retry", sqlite.RetrySQL, []any{1, c.ID, "", 0},
			[]string{"SEARCH recipients USING INDEX recipients_failed (campaign_id=?)"}},
		// An unblock walks the claim index past now, per campaign of the
		// sender (the campaigns table is scanned: a few rows).
		{"due waiting", sqlite.DueWaitingSQL, []any{1, "outbox"},
			[]string{"SEARCH recipients USING COVERING INDEX recipients_claim (campaign_id=? AND next_attempt_at>?)"}},
		// The failure breakdown walks only the failed rows, and the
		// bounced ones along the campaign's id range.
		{"failures", sqlite.EachFailedSQL, []any{c.ID},
			[]string{"SEARCH recipients USING INDEX recipients_failed (campaign_id=?)"}},
		{"bounced", sqlite.EachBouncedSQL, []any{1, 100, c.ID},
			[]string{"SEARCH recipients USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"}},
		// The chart's minutes: a primary-key range, no sort.
		{"minutes", sqlite.MinutesSQL, []any{c.ID, 1, 120},
			[]string{"SEARCH campaign_minutes USING PRIMARY KEY (campaign_id=? AND minute>? AND minute<?)"}},
		{"list all", sqlite.ListSQL(""), []any{1, 100, c.ID, 10},
			[]string{"SEARCH recipients USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"}},
		{"list failed", sqlite.ListSQL(core.RecipientFailed), []any{1, 100, c.ID, 10},
			[]string{"SEARCH recipients USING INDEX recipients_failed (campaign_id=? AND rowid>? AND rowid<?)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := queryPlan(t, db, tc.stmt, tc.args...)
			for _, w := range tc.want {
				if !strings.Contains(plan, w) {
					t.Errorf("plan lacks %q:\n%s", w, plan)
				}
			}
			for _, bad := range []string{"SCAN recipients", "TEMP B-TREE"} {
				if strings.Contains(plan, bad) {
					t.Errorf("plan has %q:\n%s", bad, plan)
				}
			}
		})
	}
	for _, st := range []core.RecipientStatus{core.RecipientPending, core.RecipientQueued, core.RecipientSending, core.RecipientSent, core.RecipientBounced} {
		plan := queryPlan(t, db, sqlite.ListSQL(st), 1, 100, c.ID, 10)
		if !strings.Contains(plan, "USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)") || strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("list %s plan:\n%s", st, plan)
		}
	}
}
