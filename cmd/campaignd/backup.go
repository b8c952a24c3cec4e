package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/control"
	"github.com/campaignd/campaignd/core/sqlite"
	"github.com/hashicorp/go-hclog"
)

// cmdBackup writes a consistent, fsynced copy of the database to DEST and
// verifies the copy. With a daemon running, the daemon makes the copy (its
// user must be able to write DEST); without one, the CLI reads the database
// itself, without a lock (WAL lets it read beside a tick). An existing DEST
// is refused without --force. Exit 1 when the copy breaks an invariant:
// the copy is kept, for inspection, and the message says so.
func (a *app) cmdBackup(ctx context.Context, args []string) error {
	fs := a.flags("backup")
	force := fs.Bool("force", false, "replace an existing DEST")
	const usage = "backup DEST [--force]"
	pos, err := a.parse(fs, args, 1, 1, usage)
	if err != nil {
		return err
	}
	// Relative to the caller's working directory, not the daemon's.
	dest, err := filepath.Abs(pos[0])
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	var res *control.BackupResult
	client := &control.Client{SocketPath: cfg.socketPath()}
	if _, err := client.Status(ctx); err == nil {
		res, err = client.Backup(ctx, dest, *force)
		if err != nil {
			return err
		}
	} else if !errors.Is(err, control.ErrNoDaemon) {
		return err
	} else {
		if err := cfg.databaseExists(); err != nil {
			return err
		}
		start := time.Now()
		info, err := sqlite.BackupFile(ctx, cfg.Database, dest, *force)
		if err != nil {
			return err
		}
		if res, err = verifyBackup(ctx, info, cfg.limits(), a.log); err != nil {
			return err
		}
		res.Duration = time.Since(start)
	}
	if err := a.print(res, func(w io.Writer) {
		if a.verbose || !res.Verify.OK() {
			fprintf(w, "backup %s: %d bytes, schema %d, %d campaigns, %d recipients in %s\n", res.Path, res.Bytes,
				res.SchemaVersion, res.Verify.Campaigns, res.Verify.Recipients, res.Duration.Round(time.Millisecond))
		}
		for _, v := range res.Verify.Violations {
			fprintf(w, "campaign %d: %s: %s\n", v.CampaignID, v.Check, v.Message)
		}
	}); err != nil {
		return err
	}
	if !res.Verify.OK() {
		return core.Errorf(core.ECONFLICT, "backup %s written, but verify found %d invariant violations in it (the database had them too: run `campaignd verify`)",
			res.Path, len(res.Verify.Violations))
	}
	return nil
}

// backup is the daemon's POST /v1/backup: the same copy and checks as
// a standalone backup, from the daemon's own read pool.
func (d *daemon) backup(ctx context.Context, req control.BackupRequest) (*control.BackupResult, error) {
	start := time.Now()
	info, err := d.local.db.Backup(ctx, req.Dest, req.Force)
	if err != nil {
		return nil, err
	}
	res, err := verifyBackup(ctx, info, d.local.eng.Limits(), d.log)
	if err != nil {
		return nil, err
	}
	res.Duration = time.Since(start)
	d.log.Info("backup", "path", res.Path, "bytes", res.Bytes, "violations", len(res.Verify.Violations), "duration", res.Duration)
	return res, nil
}

// verifyBackup runs verify's checks on a fresh copy. A copy of an older
// schema (a backup taken before migrating) is not verified by this build:
// the report carries a note saying so.
func verifyBackup(ctx context.Context, info *sqlite.BackupInfo, limits core.Limits, log hclog.Logger) (*control.BackupResult, error) {
	res := &control.BackupResult{Path: info.Path, Bytes: info.Bytes, SchemaVersion: info.SchemaVersion}
	if info.SchemaVersion != sqlite.SchemaVersion() {
		res.Verify = &core.VerifyReport{Violations: []core.Violation{}, Notes: []string{fmt.Sprintf(
			"the copy has schema %d, this campaignd %d: verify it with the campaignd that wrote it", info.SchemaVersion, sqlite.SchemaVersion())}}
		return res, nil
	}
	cp, err := sqlite.OpenReadOnly(ctx, info.Path, sqlite.WithReadConns(1))
	if err != nil {
		return nil, fmt.Errorf("backup: open the copy: %w", err)
	}
	defer cp.Close()
	eng, err := core.NewEngine(cp, nil, limits, log)
	if err != nil {
		return nil, err
	}
	if res.Verify, err = eng.Verify(ctx, 0); err != nil {
		return nil, fmt.Errorf("backup: verify the copy: %w", err)
	}
	return res, nil
}
