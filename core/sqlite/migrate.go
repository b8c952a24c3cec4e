package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/campaignd/campaignd/core"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one embedded schema step, migrations/NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations are the embedded steps in version order. Versions start at 1
// and have no gaps; a malformed set is a build error caught by the tests,
// so it panics.
var migrations = func() []migration {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		panic(err)
	}
	var ms []migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			panic(fmt.Sprintf("sqlite: migration %s: name must be NNNN_name.sql", e.Name()))
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			panic(err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			panic(fmt.Sprintf("sqlite: migration versions must run 1..n without gaps, found %d at position %d", m.version, i+1))
		}
	}
	return ms
}()

// SchemaVersion returns the schema version this build creates and expects:
// the number of the last embedded migration. The database records it in
// PRAGMA user_version and in the schema_migrations table.
func SchemaVersion() int { return len(migrations) }

// migrate applies the pending migrations, each in its own immediate
// transaction that also records it, so a crash leaves the schema at a
// version boundary and a concurrent Open waits rather than applying a step
// twice. A database newer than this build is refused with EINVALID.
func migrate(ctx context.Context, w *sql.DB) error {
	var v int
	if err := w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if v == len(migrations) {
		return nil // the common case: no write transaction at all
	}
	for _, m := range migrations {
		if err := applyMigration(ctx, w, m); err != nil {
			return err
		}
	}
	return nil
}

// applyMigration applies m unless the database already has it.
func applyMigration(ctx context.Context, w *sql.DB, m migration) error {
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if v > len(migrations) {
		return errNewerSchema(v)
	}
	if v >= m.version {
		return nil
	}
	if v != m.version-1 {
		return fmt.Errorf("migrate: database at version %d cannot take migration %d", v, m.version)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("migrate %04d_%s: %w", m.version, m.name, err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
		m.version, m.name, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("migrate %04d_%s: record: %w", m.version, m.name, err)
	}
	// PRAGMA takes no parameters; the version is an int from the build.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version)); err != nil {
		return fmt.Errorf("migrate %04d_%s: set version: %w", m.version, m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate %04d_%s: commit: %w", m.version, m.name, err)
	}
	return nil
}

// errNewerSchema is the refusal of a database a newer campaignd migrated:
// this binary would misread or corrupt it, and the fix is a newer binary.
func errNewerSchema(v int) error {
	return core.Errorf(core.EINVALID,
		"database schema %d is newer than this campaignd (knows %d): upgrade campaignd", v, len(migrations))
}

// Migration is one embedded schema step as this build knows it.
type Migration struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
	// SHA256 is the hex SHA-256 of the step's SQL text. A released step
	// never changes: the tests pin the checksum of every released one.
	SHA256 string `json:"sha256"`
}

// Migrations returns the embedded schema steps in version order.
func Migrations() []Migration {
	out := make([]Migration, len(migrations))
	for i, m := range migrations {
		sum := sha256.Sum256([]byte(m.sql))
		out[i] = Migration{Version: m.version, Name: m.name, SHA256: hex.EncodeToString(sum[:])}
	}
	return out
}

// MigrationState is one schema step and whether a database has it.
type MigrationState struct {
	Migration
	Applied   bool       `json:"applied"`
	AppliedAt *time.Time `json:"applied_at,omitempty"`
}

// MigrationStatus is where a database's schema stands against this build.
type MigrationStatus struct {
	Database string `json:"database"`
	// Version is the database's schema version (PRAGMA user_version);
	// Known is this build's (SchemaVersion).
	Version int `json:"version"`
	Known   int `json:"known"`
	// Migrations are this build's steps, applied or pending; Newer are
	// steps the database records that this build does not know (a newer
	// campaignd applied them: SHA256 is empty).
	Migrations []MigrationState `json:"migrations"`
	Newer      []MigrationState `json:"newer"`
}

// Pending returns the steps the database lacks.
func (s *MigrationStatus) Pending() []MigrationState {
	var out []MigrationState
	for _, m := range s.Migrations {
		if !m.Applied {
			out = append(out, m)
		}
	}
	return out
}

// ReadMigrationStatus reads the schema version and the applied steps of
// the database at path without migrating it or taking any lock (a
// read-only connection: it runs beside a daemon). It returns ENOTFOUND
// when the file does not exist, EINVALID when it is not a campaignd
// database.
func ReadMigrationStatus(ctx context.Context, path string) (*MigrationStatus, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, core.Errorf(core.ENOTFOUND, "database %s does not exist", path)
		}
		return nil, fmt.Errorf("migration status of %s: %w", path, err)
	}
	r, err := openReader(ctx, path, 1, DefaultReadCacheKiB)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	st := &MigrationStatus{Database: path, Known: len(migrations), Migrations: []MigrationState{}, Newer: []MigrationState{}}
	if err := r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&st.Version); err != nil {
		return nil, openError(path, err)
	}
	applied := map[int]time.Time{}
	names := map[int]string{}
	if st.Version > 0 {
		rows, err := r.QueryContext(ctx, "SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
		if err != nil {
			return nil, openError(path, err)
		}
		defer rows.Close()
		for rows.Next() {
			var v int
			var name string
			var at int64
			if err := rows.Scan(&v, &name, &at); err != nil {
				return nil, internal("migration status", err)
			}
			applied[v], names[v] = fromMS(at), name
		}
		if err := rows.Err(); err != nil {
			return nil, internal("migration status", err)
		}
	}
	for _, m := range Migrations() {
		s := MigrationState{Migration: m}
		if at, ok := applied[m.Version]; ok {
			s.Applied, s.AppliedAt = true, &at
		}
		st.Migrations = append(st.Migrations, s)
	}
	for v := len(migrations) + 1; v <= st.Version; v++ {
		s := MigrationState{Migration: Migration{Version: v, Name: names[v]}, Applied: true}
		if at, ok := applied[v]; ok {
			s.AppliedAt = &at
		}
		st.Newer = append(st.Newer, s)
	}
	return st, nil
}
