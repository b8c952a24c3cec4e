package sqlite_test

import (
	"context"
	"path/filepath"
	"sort"
	"testing"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/sqlite"
)

// TestMigrationNormalisesIDNAddresses is issue 12 item 11 on an existing
// database: addresses stored with a Unicode (or non-canonical) domain by
// an older build are rewritten to the A-label form NormalizeAddress now
// returns, so old suppressions still match and re-imports still
// deduplicate; a row already present in both spellings is not lost.
func TestMigrationNormalisesIDNAddresses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	db := MustOpenPath(t, path)
	c := MustCampaign(t, db, "idn")
	MustInsert(t, db, c.ID, []core.RecipientInput{{Email: "c@example.org"}, {Email: "d@example.org"}, {Email: "d@example.net"}, {Email: "e@example.org"},
		{Email: "f@example.org"}, {Email: "f@example.net"}, {Email: "g@example.org"}, {Email: "g@example.net"}})
	for _, s := range []string{"a@example.org", "b@example.org", "b@example.net"} {
		if err := db.Suppress(ctx, core.Suppression{Email: s, Reason: s, Source: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// What an older build stored: domains as imported.
	raw := rawDB(t, path)
	for _, q := range []string{
		`UPDATE recipients SET email = 'c@Bücher.example' WHERE email = 'c@example.org'`,
		`UPDATE recipients SET email = 'd@bücher.example' WHERE email = 'd@example.org'`,
		`UPDATE recipients SET email = 'd@xn--bcher-kva.example' WHERE email = 'd@example.net'`,
		`UPDATE recipients SET email = 'e@xn--zz.example' WHERE email = 'e@example.org'`, // not valid IDNA: left alone
		`UPDATE suppressions SET email = 'a@bücher.example' WHERE email = 'a@example.org'`,
		`UPDATE suppressions SET email = 'b@bücher.example' WHERE email = 'b@example.org'`,
		`UPDATE suppressions SET email = 'b@xn--bcher-kva.example' WHERE email = 'b@example.net'`,
		// f was sent under the Unicode spelling and queued again under the
		// other; g failed under one and waits under the other.
		`UPDATE recipients SET email = 'f@bücher.example', status = 'SENT' WHERE email = 'f@example.org'`,
		`UPDATE recipients SET email = 'f@xn--bcher-kva.example', status = 'QUEUED', next_attempt_at = 0 WHERE email = 'f@example.net'`,
		`UPDATE recipients SET email = 'g@bücher.example', status = 'FAILED', last_error_class = 'permanent' WHERE email = 'g@example.org'`,
		`UPDATE recipients SET email = 'g@xn--bcher-kva.example' WHERE email = 'g@example.net'`,
		`UPDATE campaigns SET pending = pending - 3, queued = queued + 1, sent = sent + 1, failed = failed + 1`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()

	db = MustOpenPath(t, path)
	if err := sqlite.ReapplyMigration(ctx, db, "idn"); err != nil {
		t.Fatal(err)
	}
	var got []string
	rows, err := rawDB(t, path).Query(`SELECT email FROM recipients UNION ALL SELECT 'suppressed ' || email || ' ' || reason FROM suppressions`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	rows.Close()
	sort.Strings(got)
	want := []string{
		"c@xn--bcher-kva.example",
		// d, both unsent: the old spelling goes. f, sent under one: the
		// unsent other goes. g, failed under one: both stay, lest the one
		// message that reaches g be lost.
		"d@xn--bcher-kva.example",
		"e@xn--zz.example",
		"f@bücher.example",
		"g@bücher.example",
		"g@xn--bcher-kva.example",
		"suppressed a@xn--bcher-kva.example a@example.org",
		"suppressed b@xn--bcher-kva.example b@example.net", // the entry already normalised wins
	}
	if len(got) != len(want) {
		t.Fatalf("after migration:\n%q\nwant\n%q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("after migration:\n%q\nwant\n%q", got, want)
		}
	}
	// The counters follow the rows removed.
	var total, pending, queued, sent, failed, nrows int64
	if err := rawDB(t, path).QueryRow(`SELECT total, pending, queued, sent, failed, (SELECT count(*) FROM recipients) FROM campaigns`).
		Scan(&total, &pending, &queued, &sent, &failed, &nrows); err != nil {
		t.Fatal(err)
	}
	if total != nrows || total != 6 || pending != 4 || queued != 0 || sent != 1 || failed != 1 {
		t.Errorf("counters after the migration: total %d (rows %d), pending %d, queued %d, sent %d, failed %d; want 6 (6), 4, 0, 1, 1",
			total, nrows, pending, queued, sent, failed)
	}
	// A new import, in either spelling, meets the old suppression and the
	// old recipient.
	in := []core.RecipientInput{{Email: "a@BÜCHER.example"}, {Email: "c@xn--bcher-kva.example"}, {Email: "c@bücher.example"}}
	for i := range in {
		if err := in[i].Validate(); err != nil {
			t.Fatal(err)
		}
	}
	if res := MustInsert(t, db, c.ID, in); res.Suppressed != 1 || res.Duplicates != 2 || res.Added != 0 {
		t.Fatalf("import after the upgrade: %+v, want 1 suppressed and 2 duplicates", res)
	}
	if v := sqlite.SchemaVersion(); v < 3 {
		t.Fatalf("schema version %d", v)
	}
}
