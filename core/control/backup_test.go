package control_test

import (
	"context"
	"testing"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/control"
)

// POST /v1/backup hands the request to ServerConfig.Backup and returns its
// result; a relative dest is refused before it, its errors come back
// coded, and a server without the hook says it makes no backups.
func TestBackupRoute(t *testing.T) {
	ctx := context.Background()
	var got []control.BackupRequest
	_, c := startServer(t, &fakeService{}, control.ServerConfig{
		Backup: func(ctx context.Context, req control.BackupRequest) (*control.BackupResult, error) {
			got = append(got, req)
			if !req.Force {
				return nil, core.Errorf(core.ECONFLICT, "backup: %s already exists (--force replaces it)", req.Dest)
			}
			return &control.BackupResult{Path: req.Dest, Bytes: 4096, SchemaVersion: 2, Verify: &core.VerifyReport{Campaigns: 1}}, nil
		},
	})
	res, err := c.Backup(ctx, "/var/backups/c.db", true)
	if err != nil || res.Path != "/var/backups/c.db" || res.Bytes != 4096 || res.Verify == nil || res.Verify.Campaigns != 1 {
		t.Fatalf("backup: %+v, %v", res, err)
	}
	if _, err := c.Backup(ctx, "/var/backups/c.db", false); core.ErrorCode(err) != core.ECONFLICT ||
		core.ErrorMessage(err) != "backup: /var/backups/c.db already exists (--force replaces it)" {
		t.Fatalf("backup without force: %v", err)
	}
	if _, err := c.Backup(ctx, "c.db", true); core.ErrorCode(err) != core.EINVALID {
		t.Fatalf("relative dest: %v, want EINVALID", err)
	}
	if len(got) != 2 || got[0] != (control.BackupRequest{Dest: "/var/backups/c.db", Force: true}) {
		t.Fatalf("hook saw %+v", got)
	}

	_, c = startServer(t, &fakeService{}, control.ServerConfig{})
	if _, err := c.Backup(ctx, "/tmp/c.db", false); core.ErrorCode(err) != core.EUNAVAILABLE {
		t.Fatalf("no hook: %v, want EUNAVAILABLE", err)
	}
}
