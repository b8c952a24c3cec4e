package sqlite_test

import (
	"context"
	"testing"

	"github.com/campaignd/campaignd/core"
)

// MissingAttrs counts only the recipients in the statuses asked for: edit
// asks PENDING and QUEUED, activate and execute PENDING alone.
func TestMissingAttrsStatuses(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	c := MustCampaign(t, db, "attrs")
	MustInsert(t, db, c.ID, []core.RecipientInput{{Email: "pending@example.org"}, {Email: "queued@example.org"},
		{Email: "sent@example.org"}, {Email: "ok@example.org", Attrs: map[string]string{"coupon": "X"}}})
	raw := rawDB(t, db.Path())
	for _, q := range []string{
		`UPDATE recipients SET status = 'QUEUED' WHERE email IN ('queued@example.org', 'ok@example.org')`,
		`UPDATE recipients SET status = 'SENT' WHERE email = 'sent@example.org'`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, tc := range []struct {
		statuses []core.RecipientStatus
		count    int64
		example  string
	}{
		{[]core.RecipientStatus{core.RecipientPending}, 1, "pending@example.org"},
		{[]core.RecipientStatus{core.RecipientQueued}, 1, "queued@example.org"},
		{[]core.RecipientStatus{core.RecipientPending, core.RecipientQueued}, 2, "pending@example.org"},
		{nil, 0, ""},
	} {
		m, err := db.MissingAttrs(ctx, c.ID, []string{"coupon"}, tc.statuses)
		if err != nil || m.Count != tc.count || m.Example != tc.example {
			t.Errorf("%v: %+v %v, want %d e.g. %q", tc.statuses, m, err, tc.count, tc.example)
		}
	}
}
