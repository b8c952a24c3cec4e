package main

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/control"
	"github.com/campaignd/campaignd/core/sqlite"
)

// cmdMigrate applies the pending schema migrations (serve and the writing
// commands, which hold the database lock exclusively, apply them too;
// reading commands and ticks refuse a pending schema and point here), or
// with --status lists the applied and
// pending ones without changing anything. Migrating needs the database
// lock: with a daemon running it refuses and says to stop it first.
func (a *app) cmdMigrate(ctx context.Context, args []string) error {
	fs := a.flags("migrate")
	status := fs.Bool("status", false, "list applied and pending migrations; change nothing")
	if _, err := a.parse(fs, args, 0, 0, "migrate [--status]"); err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	if err := cfg.databaseExists(); err != nil {
		return err
	}
	st, err := sqlite.ReadMigrationStatus(ctx, cfg.Database)
	if err != nil {
		return err
	}
	if !*status && len(st.Newer) == 0 && len(st.Pending()) > 0 {
		if st, err = a.applyMigrations(ctx, cfg); err != nil {
			return err
		}
	}
	if err := a.print(st, func(w io.Writer) {
		if !*status && !a.verbose && len(st.Newer) == 0 {
			return
		}
		fprintf(w, "database %s: schema %d (this campaignd knows %d)\n", st.Database, st.Version, st.Known)
		for _, m := range st.Migrations {
			state := "pending"
			if m.Applied && m.AppliedAt != nil {
				state = "applied " + m.AppliedAt.Format(time.RFC3339)
			} else if m.Applied {
				state = "applied"
			}
			fprintf(w, "  %04d %-24s %-34s sha256 %s\n", m.Version, m.Name, state, m.SHA256[:12])
		}
		for _, m := range st.Newer {
			fprintf(w, "  %04d %-24s %-34s (unknown to this campaignd)\n", m.Version, m.Name, "applied by a newer campaignd")
		}
	}); err != nil {
		return err
	}
	if len(st.Newer) > 0 {
		return core.Errorf(core.EINVALID, "database schema %d is newer than this campaignd (knows %d): upgrade campaignd", st.Version, st.Known)
	}
	return nil
}

// applyMigrations takes the database lock, lets Open apply what is
// pending, and reads the status again.
func (a *app) applyMigrations(ctx context.Context, cfg *Config) (*sqlite.MigrationStatus, error) {
	client := &control.Client{SocketPath: cfg.socketPath()}
	if d, err := client.Status(ctx); err == nil {
		return nil, core.Errorf(core.ECONFLICT, "a daemon (pid %d, campaignd %s) serves this database: stop it, back up, then migrate", d.PID, d.Version)
	} else if !errors.Is(err, control.ErrNoDaemon) {
		return nil, err
	}
	lock, err := sqlite.Lock(cfg.Database, cfg.LockTimeout.Duration, "campaignd migrate")
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	db, err := sqlite.Open(ctx, cfg.Database)
	if err != nil {
		return nil, err
	}
	if err := db.Close(); err != nil {
		return nil, err
	}
	a.log.Info("migrated", "database", cfg.Database, "schema", sqlite.SchemaVersion())
	return sqlite.ReadMigrationStatus(ctx, cfg.Database)
}
