package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/sqlite"
)

// CheckCounters compares every campaign's counter columns with a real
// COUNT(*) of its recipients.
func CheckCounters(tb testing.TB, db *sqlite.DB) {
	tb.Helper()
	raw := rawDB(tb, db.Path())
	rows, err := raw.Query(`SELECT c.id, c.total, c.pending, c.queued, c.sending, c.sent, c.failed, c.bounced,
		(SELECT count(*) FROM recipients r WHERE r.campaign_id = c.id),
		(SELECT count(*) FROM recipients r WHERE r.campaign_id = c.id AND r.status = 'PENDING'),
		(SELECT count(*) FROM recipients r WHERE r.campaign_id = c.id AND r.status = 'QUEUED'),
		(SELECT count(*) FROM recipients r WHERE r.campaign_id = c.id AND r.status = 'SENDING'),
		(SELECT count(*) FROM recipients r WHERE r.campaign_id = c.id AND r.status = 'SENT'),
		(SELECT count(*) FROM recipients r WHERE r.campaign_id = c.id AND r.status = 'FAILED'),
		(SELECT count(*) FROM recipients r WHERE r.campaign_id = c.id AND r.status = 'BOUNCED')
		FROM campaigns c`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var counters, counts [7]int64
		if err := rows.Scan(&id, &counters[0], &counters[1], &counters[2], &counters[3], &counters[4], &counters[5], &counters[6],
			&counts[0], &counts[1], &counts[2], &counts[3], &counts[4], &counts[5], &counts[6]); err != nil {
			tb.Fatal(err)
		}
		if counters != counts {
			tb.Errorf("campaign %d: counters total/pending/queued/sending/sent/failed/bounced = %v, COUNT(*) = %v", id, counters, counts)
		}
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
}

func TestInsertRecipientsCounts(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	c := MustCampaign(t, db, "import")
	other := MustCampaign(t, db, "other")

	if err := db.Suppress(ctx, core.Suppression{Email: "Blocked@Example.com", Reason: "complained", Source: "operator"}); err != nil {
		t.Fatal(err)
	}
	rs := Inputs(0, 1234) // crosses the 500/100/10/1 statement sizes
	rs = append(rs,
		core.RecipientInput{Email: "user5@example.com"},   // duplicate within the input
		core.RecipientInput{Email: "blocked@example.com"}, // suppressed, other case
		core.RecipientInput{Email: "BLOCKED@example.com"}, // suppressed again
	)
	res := MustInsert(t, db, c.ID, rs)
	if want := (core.InsertResult{Added: 1234, Duplicates: 1, Suppressed: 2}); res != want {
		t.Fatalf("first insert: %+v, want %+v", res, want)
	}
	// Against the campaign: 1000..1233 exist, 1234..1299 are new.
	res = MustInsert(t, db, c.ID, Inputs(1000, 300))
	if want := (core.InsertResult{Added: 66, Duplicates: 234}); res != want {
		t.Fatalf("second insert: %+v, want %+v", res, want)
	}
	// The same addresses are welcome in another campaign.
	res = MustInsert(t, db, other.ID, Inputs(0, 10))
	if res.Added != 10 {
		t.Fatalf("other campaign: %+v", res)
	}
	got, _ := db.Campaign(ctx, c.ID)
	if want := (core.Stats{Total: 1300, Pending: 1300}); got.Stats != want {
		t.Fatalf("stats %+v, want %+v", got.Stats, want)
	}
	CheckCounters(t, db)

	if res, err := db.InsertRecipients(ctx, c.ID, nil, t0); err != nil || res != (core.InsertResult{}) {
		t.Fatalf("empty insert: %+v, %v", res, err)
	}
	if _, err := db.InsertRecipients(ctx, 999, Inputs(0, 1), t0); Code(err) != core.ENOTFOUND {
		t.Fatalf("unknown campaign: %v, want ENOTFOUND", err)
	}
	if _, err := db.InsertRecipients(ctx, c.ID, []core.RecipientInput{{Email: ""}}, t0); Code(err) != core.EINVALID {
		t.Fatalf("empty address: %v, want EINVALID", err)
	}
}

func TestInsertRecipientsStoresFields(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	c := MustCampaign(t, db, "fields")
	attrs := map[string]string{"b": "two \"quoted\" \\ \n\t\x01 é 日本", "a": "one", "": "empty key"}
	MustInsert(t, db, c.ID, []core.RecipientInput{
		{Email: "ann@example.com", Name: "Ann", Attrs: attrs},
		{Email: "bob@example.com", Attrs: map[string]string{}},
	})
	rs, err := db.Recipients(ctx, c.ID, core.RecipientFilter{})
	if err != nil || len(rs) != 2 {
		t.Fatalf("list: %v, %v", rs, err)
	}
	ann, bob := rs[0], rs[1]
	if ann.Email != "ann@example.com" || ann.Name != "Ann" || !reflect.DeepEqual(ann.Attrs, attrs) {
		t.Fatalf("ann: %+v", ann)
	}
	if ann.Status != core.RecipientPending || ann.Attempts != 0 || !ann.CreatedAt.Equal(t0) || !ann.UpdatedAt.Equal(t0) ||
		ann.QueuedAt != nil || ann.NextAttemptAt != nil || ann.SentAt != nil || ann.LeaseUntil != nil || ann.CampaignID != c.ID {
		t.Fatalf("ann's state: %+v", ann)
	}
	if bob.Attrs != nil {
		t.Fatalf("empty attrs stored as %v, want NULL", bob.Attrs)
	}
	var attrsCol sql.NullString
	if err := rawDB(t, db.Path()).QueryRow("SELECT attrs FROM recipients WHERE id = ?", bob.ID).Scan(&attrsCol); err != nil || attrsCol.Valid {
		t.Fatalf("bob's attrs column: %v, %v; want NULL", attrsCol, err)
	}
	one, err := db.Recipient(ctx, ann.ID)
	if err != nil || !reflect.DeepEqual(one, ann) {
		t.Fatalf("Recipient: %+v, %v", one, err)
	}
	if _, err := db.Recipient(ctx, 999); Code(err) != core.ENOTFOUND {
		t.Fatalf("unknown recipient: %v, want ENOTFOUND", err)
	}
}

func TestInsertRecipientsByCampaignStatus(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)

	sending := MustSending(t, db, 3)
	later := t0.Add(time.Hour)
	if _, err := db.InsertRecipients(ctx, sending.ID, Inputs(10, 2), later); err != nil {
		t.Fatal(err)
	}
	rs, _ := db.Recipients(ctx, sending.ID, core.RecipientFilter{AfterID: 0})
	last := rs[len(rs)-1]
	if last.Status != core.RecipientQueued || last.NextAttemptAt == nil || !last.NextAttemptAt.Equal(later) || !last.QueuedAt.Equal(later) {
		t.Fatalf("late addition to a SENDING campaign: %+v", last)
	}

	// Paused from SENDING: still queued, so resuming sends it.
	MustStatus(t, db, sending.ID, core.CampaignSending, core.CampaignPaused)
	if _, err := db.InsertRecipients(ctx, sending.ID, Inputs(20, 1), later); err != nil {
		t.Fatal(err)
	}
	got, _ := db.Campaign(ctx, sending.ID)
	if want := (core.Stats{Total: 6, Queued: 6}); got.Stats != want {
		t.Fatalf("stats %+v, want %+v", got.Stats, want)
	}

	// Paused from ACTIVE: PENDING, to be queued by execute.
	active := MustCampaign(t, db, "active")
	MustStatus(t, db, active.ID, core.CampaignDraft, core.CampaignActive)
	MustStatus(t, db, active.ID, core.CampaignActive, core.CampaignPaused)
	MustInsert(t, db, active.ID, Inputs(0, 2))
	if got, _ := db.Campaign(ctx, active.ID); got.Stats.Pending != 2 {
		t.Fatalf("paused-from-active stats %+v", got.Stats)
	}

	for _, st := range []core.CampaignStatus{core.CampaignCancelled, core.CampaignCompleted} {
		c := MustCampaign(t, db, string(st))
		MustStatus(t, db, c.ID, core.CampaignDraft, st)
		if _, err := db.InsertRecipients(ctx, c.ID, Inputs(0, 1), t0); Code(err) != core.ECONFLICT {
			t.Fatalf("insert into %s campaign: %v, want ECONFLICT", st, err)
		}
	}
	CheckCounters(t, db)
}

func TestRecipientsPaging(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	a := MustCampaign(t, db, "a")
	b := MustCampaign(t, db, "b")
	// Interleave the two campaigns' ids.
	for i := 0; i < 5; i++ {
		MustInsert(t, db, a.ID, Inputs(i*10, 10))
		MustInsert(t, db, b.ID, Inputs(i*10, 7))
	}
	var all []*core.Recipient
	after := int64(0)
	for {
		page, err := db.Recipients(ctx, a.ID, core.RecipientFilter{Limit: 8, AfterID: after})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 8 {
			t.Fatalf("page of %d, limit 8", len(page))
		}
		all = append(all, page...)
		after = page[len(page)-1].ID
	}
	if len(all) != 50 {
		t.Fatalf("paged %d recipients of a, want 50", len(all))
	}
	for i, r := range all {
		if r.CampaignID != a.ID || (i > 0 && r.ID <= all[i-1].ID) {
			t.Fatalf("row %d: %+v (previous id %d)", i, r, all[i-1].ID)
		}
	}
	// After the int64 maximum is past the end, not page one again (it
	// overflowed: issue 12 item 13).
	for _, f := range []core.RecipientFilter{{AfterID: math.MaxInt64}, {AfterID: math.MaxInt64, Status: core.RecipientFailed}} {
		if rs, err := db.Recipients(ctx, a.ID, f); err != nil || len(rs) != 0 {
			t.Fatalf("after_id %d: %d rows, %v; want none", f.AfterID, len(rs), err)
		}
	}
	if rs, _ := db.Recipients(ctx, b.ID, core.RecipientFilter{Limit: 1000}); len(rs) != 35 {
		t.Fatalf("b has %d recipients listed, want 35", len(rs))
	}
	if rs, _ := db.Recipients(ctx, a.ID, core.RecipientFilter{Status: core.RecipientSent}); len(rs) != 0 {
		t.Fatalf("SENT filter listed %d", len(rs))
	}
	if rs, _ := db.Recipients(ctx, a.ID, core.RecipientFilter{Status: "pending", Limit: 3}); len(rs) != 3 {
		t.Fatalf("lower-case PENDING filter listed %d, want 3", len(rs))
	}
	if _, err := db.Recipients(ctx, a.ID, core.RecipientFilter{Status: "LOST"}); Code(err) != core.EINVALID {
		t.Fatalf("bad status: %v, want EINVALID", err)
	}
	if _, err := db.Recipients(ctx, a.ID, core.RecipientFilter{Limit: -1}); Code(err) != core.EINVALID {
		t.Fatalf("negative limit: %v, want EINVALID", err)
	}
	if _, err := db.Recipients(ctx, a.ID, core.RecipientFilter{Limit: core.MaxListLimit + 1}); Code(err) != core.EINVALID {
		t.Fatalf("limit past the maximum: %v, want EINVALID", err)
	}
	if _, err := db.Suppressions(ctx, -1); Code(err) != core.EINVALID {
		t.Fatalf("negative suppressions limit: %v, want EINVALID", err)
	}
	if _, err := db.Recipients(ctx, 999, core.RecipientFilter{}); Code(err) != core.ENOTFOUND {
		t.Fatalf("unknown campaign: %v, want ENOTFOUND", err)
	}
	empty := MustCampaign(t, db, "empty")
	if rs, err := db.Recipients(ctx, empty.ID, core.RecipientFilter{}); err != nil || len(rs) != 0 {
		t.Fatalf("empty campaign: %v, %v", rs, err)
	}
	_ = fmt.Sprint()
}
