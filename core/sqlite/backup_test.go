package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/sqlite"
)

// A backup taken while another connection keeps writing is one snapshot:
// the copy opens as a campaignd database, its counters equal its rows, it
// has mode 0600 and no WAL; an existing destination is refused unless
// overwriting is asked for, and a read-only DB can make a backup too.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "c.db")
	db := MustOpenPath(t, path)
	c := MustCampaign(t, db, "backup")
	MustInsert(t, db, c.ID, Inputs(0, 2000))

	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 2000; !stop.Load(); i += 50 {
			if _, err := db.InsertRecipients(ctx, c.ID, Inputs(i, 50), t0); err != nil {
				t.Errorf("insert beside the backup: %v", err)
				return
			}
		}
	}()
	dest := filepath.Join(dir, "backup.db")
	info, err := db.Backup(ctx, dest, false)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if info.Path != dest || info.Bytes <= 0 || info.SchemaVersion != sqlite.SchemaVersion() {
		t.Fatalf("backup info %+v", info)
	}
	fi, err := os.Stat(dest)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != info.Bytes {
		t.Fatalf("copy: %v, %v", fi.Mode(), err)
	}
	raw := rawDB(t, dest)
	var mode string
	if err := raw.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode == "wal" {
		t.Fatalf("copy journal_mode %q, %v: want a plain file", mode, err)
	}
	var total, rows int64
	if err := raw.QueryRow("SELECT total FROM campaigns WHERE id = ?", c.ID).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow("SELECT count(*) FROM recipients WHERE campaign_id = ?", c.ID).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if total != rows || total < 2000 {
		t.Fatalf("copy: counter total %d, %d rows: not one snapshot", total, rows)
	}
	raw.Close()
	if entries, _ := filepath.Glob(filepath.Join(dir, ".backup.db.tmp-*")); len(entries) != 0 {
		t.Fatalf("temporary files left: %v", entries)
	}

	if _, err := db.Backup(ctx, dest, false); core.ErrorCode(err) != core.ECONFLICT {
		t.Fatalf("backup over an existing file: %v, want ECONFLICT", err)
	}
	if _, err := db.Backup(ctx, path, true); core.ErrorCode(err) != core.EINVALID {
		t.Fatalf("backup onto the database itself: %v, want EINVALID", err)
	}
	ro, err := sqlite.OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Backup(ctx, dest, true); err != nil {
		t.Fatalf("backup --force from a read-only DB: %v", err)
	}
	copyDB, err := sqlite.OpenReadOnly(ctx, dest)
	if err != nil {
		t.Fatalf("open the copy: %v", err)
	}
	defer copyDB.Close()
	got, err := copyDB.Campaign(ctx, c.ID)
	if err != nil || got.Name != "backup" {
		t.Fatalf("campaign in the copy: %+v, %v", got, err)
	}
}
