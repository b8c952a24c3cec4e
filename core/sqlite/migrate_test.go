package sqlite_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/sqlite"
)

// releasedMigrations pins the SHA-256 of every migration a release has
// shipped. A released migration is frozen: databases in the field have
// run it, so a change to it would fork the schema; fix a mistake with a new
// migration instead. When a release ships a new migration, add its line
// here (sha256sum core/sqlite/migrations/NNNN_name.sql).
var releasedMigrations = map[string]string{
	"0001_init.sql":   "76115e2d07a8e2a142f80f67e98eeca4fa186c2b91abdca82e93e24fd01948a1",
	"0002_events.sql": "b8b3f0aaafaeacdef31794450d31e3b1ce0e9a1060f9451d2026714f0d2c73c9",
	// Add each migration here when it is released.
}

var migrationName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)

// Every released migration is embedded unchanged; every embedded one is
// named NNNN_name.sql, numbered 1..n without gaps, and reported by
// Migrations with the checksum of its file. Unreleased ones (not pinned
// yet) are listed in the log.
func TestMigrationsFrozen(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations found: %v", err)
	}
	embedded := sqlite.Migrations()
	if len(embedded) != len(files) || sqlite.SchemaVersion() != len(files) {
		t.Fatalf("%d migration files, %d embedded, schema version %d", len(files), len(embedded), sqlite.SchemaVersion())
	}
	seen := map[string]bool{}
	for i, f := range files {
		base := filepath.Base(f)
		m := migrationName.FindStringSubmatch(base)
		if m == nil {
			t.Fatalf("%s: want NNNN_name.sql", base)
		}
		got := embedded[i]
		if want := strings.TrimLeft(m[1], "0"); got.Name != m[2] || itoa(got.Version) != want {
			t.Fatalf("%s embedded as %d %s", base, got.Version, got.Name)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256Hex(b); got.SHA256 != sum {
			t.Fatalf("%s: Migrations says sha256 %s, the file is %s", base, got.SHA256, sum)
		}
		if pinned, ok := releasedMigrations[base]; ok {
			seen[base] = true
			if got.SHA256 != pinned {
				t.Errorf("%s was released with sha256 %s and is now %s: released migrations are frozen; "+
					"undo the change and put it in a new migration", base, pinned, got.SHA256)
			}
		} else {
			t.Logf("%s (sha256 %s) is not released yet: pin it in releasedMigrations when it is", base, got.SHA256)
		}
	}
	for name := range releasedMigrations {
		if !seen[name] {
			t.Errorf("released migration %s is missing or renamed", name)
		}
	}
}

// A fresh database has every migration applied; one whose user_version was
// rolled back (as if opened by the last release) lists the rest pending,
// and Open applies them.
func TestMigrationStatus(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	st, err := sqlite.ReadMigrationStatus(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != sqlite.SchemaVersion() || st.Known != sqlite.SchemaVersion() || len(st.Pending()) != 0 || len(st.Newer) != 0 {
		t.Fatalf("fresh database: %+v", st)
	}
	for _, m := range st.Migrations {
		if !m.Applied || m.AppliedAt == nil || m.SHA256 == "" {
			t.Fatalf("fresh database: %+v not applied", m)
		}
	}
	if _, err := sqlite.ReadMigrationStatus(ctx, filepath.Join(t.TempDir(), "none.db")); core.ErrorCode(err) != core.ENOTFOUND {
		t.Fatalf("status of a missing file: %v, want ENOTFOUND", err)
	}
}

// A database a newer campaignd migrated is refused by Open and
// OpenReadOnly with a message that says so, and its status lists the step
// this build does not know.
func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	MustOpenPath(t, path)
	raw := rawDB(t, path)
	next := sqlite.SchemaVersion() + 1
	if _, err := raw.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)", next); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("PRAGMA user_version = " + itoa(next)); err != nil {
		t.Fatal(err)
	}
	want := "database schema " + itoa(next) + " is newer than this campaignd (knows " + itoa(sqlite.SchemaVersion()) + "): upgrade campaignd"
	for name, open := range map[string]func() error{
		"Open":         func() error { _, err := sqlite.Open(ctx, path); return err },
		"OpenReadOnly": func() error { _, err := sqlite.OpenReadOnly(ctx, path); return err },
	} {
		err := open()
		if core.ErrorCode(err) != core.EINVALID || core.ErrorMessage(err) != want {
			t.Errorf("%s: %v (message %q), want EINVALID %q", name, err, core.ErrorMessage(err), want)
		}
	}
	st, err := sqlite.ReadMigrationStatus(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != next || len(st.Newer) != 1 || st.Newer[0].Name != "future" || len(st.Pending()) != 0 {
		t.Fatalf("status of a newer database: %+v", st)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
