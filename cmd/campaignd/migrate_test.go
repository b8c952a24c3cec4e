package main_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/sqlite"
)

// releaseFixture is a database made by the last release (commit fde9a76,
// schema 2) with testdata/upgrade/generate.sh: five campaigns, COMPLETED,
// SENDING (with SENT, BOUNCED, FAILED and QUEUED recipients), PAUSED,
// DRAFT and CANCELLED, and two suppressions.
const releaseFixture = "testdata/upgrade/fde9a76.db"

// releaseSchema is the fixture's schema version.
const releaseSchema = 2

// copyFixture copies the release fixture to e's database path.
func copyFixture(t *testing.T, e *Env) {
	t.Helper()
	b, err := os.ReadFile(releaseFixture)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.DB, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A database the last release made lists its applied migrations and the
// pending ones, upgrades with `campaignd migrate`, verifies clean, keeps
// every campaign's state and counters, and goes on sending.
func TestUpgradeFromRelease(t *testing.T) {
	sink := NewSink(t)
	e := NewEnv(t, "[senders.out]\nplugin = \"outbox\"\n"+sinkTOML("mail", sink))
	copyFixture(t, e)

	var st sqlite.MigrationStatus
	e.MustJSON(&st, "migrate", "--status")
	if st.Version != releaseSchema || st.Known != sqlite.SchemaVersion() || len(st.Newer) != 0 ||
		len(st.Pending()) != sqlite.SchemaVersion()-releaseSchema {
		t.Fatalf("status of the release database: %+v", st)
	}
	for _, m := range st.Migrations {
		if m.Applied != (m.Version <= releaseSchema) {
			t.Fatalf("migration %d %s: applied %v", m.Version, m.Name, m.Applied)
		}
	}
	text := e.MustRun("migrate", "--status")
	if !strings.Contains(text, "schema 2 (this campaignd knows "+strconv.Itoa(sqlite.SchemaVersion())+")") ||
		!strings.Contains(text, "0001 init") || !strings.Contains(text, "0002 events") {
		t.Fatalf("migrate --status:\n%s", text)
	}

	if out := e.MustRun("migrate"); out != "" {
		t.Fatalf("migrate printed %q, want nothing (quiet like a cron job; -v for the status)", out)
	}
	e.MustJSON(&st, "migrate", "--status")
	if st.Version != sqlite.SchemaVersion() || len(st.Pending()) != 0 {
		t.Fatalf("after migrate: %+v", st)
	}
	e.MustRun("verify")

	var cs []core.Campaign
	e.MustJSON(&cs, "campaign", "list")
	want := map[string]struct {
		status core.CampaignStatus
		stats  core.Stats
	}{
		"sent":      {core.CampaignCompleted, core.Stats{Total: 3, Sent: 3}},
		"mixed":     {core.CampaignSending, core.Stats{Total: 5, Queued: 1, Sent: 2, Failed: 1, Bounced: 1}},
		"paused":    {core.CampaignPaused, core.Stats{Total: 2, Queued: 2}},
		"draft":     {core.CampaignDraft, core.Stats{Total: 1, Pending: 1}},
		"cancelled": {core.CampaignCancelled, core.Stats{Total: 1, Failed: 1}},
	}
	if len(cs) != len(want) {
		t.Fatalf("%d campaigns after the upgrade, want %d", len(cs), len(want))
	}
	for _, c := range cs {
		w := want[c.Name]
		if c.Status != w.status || c.Stats != w.stats {
			t.Errorf("campaign %q: %s %+v, want %s %+v", c.Name, c.Status, c.Stats, w.status, w.stats)
		}
	}
	rs := dlvRecipients(t, e, 2)
	if r := rs["bounce@example.com"]; r.Status != core.RecipientBounced || r.LastErrorCode != 550 {
		t.Errorf("bounce@: %+v", r)
	}
	if r := rs["reject@example.com"]; r.Status != core.RecipientFailed {
		t.Errorf("reject@: %+v", r)
	}
	var sup []core.Suppression
	e.MustJSON(&sup, "suppress", "list")
	if len(sup) != 2 {
		t.Errorf("suppressions after the upgrade: %+v, want manual@ and bounce@", sup)
	}

	// It goes on: the paused campaign resumes, and a tick sends what is due.
	e.MustRun("campaign", "resume", "3")
	e.MustRun("tick")
	if got := dlvShow(t, e, 3); got.Status != core.CampaignCompleted || got.Stats.Sent != 2 {
		t.Fatalf("resumed campaign after a tick: %s %+v", got.Status, got.Stats)
	}
	e.MustRun("verify")
}

// A database a newer campaignd migrated is refused by serve and by every
// command that writes, with a message saying so; migrate --status lists
// the step this campaignd does not know, and still exits 1.
func TestNewerSchemaRefused(t *testing.T) {
	e := NewEnv(t, "")
	e.MustRun("init")
	next := sqlite.SchemaVersion() + 3
	raw, err := sql.Open("sqlite3", e.DB)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"INSERT INTO schema_migrations (version, name, applied_at) VALUES (" + strconv.Itoa(next) + ", 'from_the_future', 0)",
		"PRAGMA user_version = " + strconv.Itoa(next),
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	want := "database schema " + strconv.Itoa(next) + " is newer than this campaignd (knows " +
		strconv.Itoa(sqlite.SchemaVersion()) + "): upgrade campaignd"
	for _, args := range [][]string{
		{"serve"},
		{"tick"},
		{"campaign", "create", "--name", "n", "--from", "a@example.com", "--subject", "s", "--text", "t"},
		{"suppress", "add", "x@example.com"},
		{"migrate"},
	} {
		r := e.Run(args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, want) {
			t.Errorf("campaignd %s: %s\nwant exit 1 and %q", strings.Join(args, " "), r, want)
		}
	}
	r := e.Run("migrate", "--status")
	if r.Code != 1 || !strings.Contains(r.Stdout, "from_the_future") || !strings.Contains(r.Stderr, want) {
		t.Errorf("migrate --status: %s", r)
	}
	if _, err := os.Stat(filepath.Join(e.Dir, "campaignd.sock")); err == nil {
		t.Error("serve left a socket behind")
	}
}
