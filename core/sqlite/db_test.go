package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/sqlite"
)

// rawDB opens a plain read-write handle on the file for assertions that go
// behind the Store (COUNT(*) checks, query plans).
func rawDB(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestOpenMigratesOnceAndReopens(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	for i := 0; i < 3; i++ {
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
		if i == 0 {
			c := MustCampaign(t, db, "kept")
			MustInsert(t, db, c.ID, Inputs(0, 3))
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	raw := rawDB(t, path)
	var v, n int
	if err := raw.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow("SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if v != sqlite.SchemaVersion() || n != sqlite.SchemaVersion() {
		t.Fatalf("user_version %d, %d migrations recorded; want %d", v, n, sqlite.SchemaVersion())
	}
	var total int
	if err := raw.QueryRow("SELECT total FROM campaigns").Scan(&total); err != nil || total != 3 {
		t.Fatalf("data lost across reopen: total=%d err=%v", total, err)
	}
	var mode string
	if err := raw.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q, %v; want wal", mode, err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	db := MustOpenPath(t, path)
	_ = db
	raw := rawDB(t, path)
	if _, err := raw.Exec("PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open(context.Background(), path)
	if Code(err) != core.EINVALID {
		t.Fatalf("open of a newer schema: %v (code %q), want EINVALID", err, Code(err))
	}
	_, err = sqlite.OpenReadOnly(context.Background(), path)
	if Code(err) != core.EINVALID {
		t.Fatalf("read-only open of a newer schema: %v, want EINVALID", err)
	}
}

func TestOpenRejectsNonDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	if err := os.WriteFile(path, []byte("this is not an sqlite database, not at all......................................................."), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open(context.Background(), path)
	if Code(err) != core.EINVALID {
		t.Fatalf("open of a text file: %v (code %q), want EINVALID", err, Code(err))
	}
}

func TestFileModes(t *testing.T) {
	old := setUmask(0o022)
	defer setUmask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "c.db")
	db := MustOpenPath(t, path)
	c := MustCampaign(t, db, "modes") // a write, so -wal exists
	MustInsert(t, db, c.ID, Inputs(0, 10))
	if _, err := db.Campaign(context.Background(), c.ID); err != nil { // a read, so -shm exists
		t.Fatal(err)
	}
	lock, err := sqlite.Lock(path, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	for _, p := range []string{path, path + "-wal", path + "-shm", path + ".lock"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("stat %s: %v", p, err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(p), m)
		}
	}
}

func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	if _, err := sqlite.OpenReadOnly(ctx, path); Code(err) != core.ENOTFOUND {
		t.Fatalf("read-only open of a missing file: %v, want ENOTFOUND", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read-only open created the file: %v", err)
	}
	w := MustOpenPath(t, path)
	c := MustCampaign(t, w, "ro")
	MustInsert(t, w, c.ID, Inputs(0, 5))

	ro, err := sqlite.OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	got, err := ro.Campaign(ctx, c.ID)
	if err != nil || got.Stats.Total != 5 {
		t.Fatalf("read-only read: %+v, %v", got, err)
	}
	// A write by the read-write handle is visible to the reader.
	MustInsert(t, w, c.ID, Inputs(5, 5))
	if got, _ = ro.Campaign(ctx, c.ID); got.Stats.Total != 10 {
		t.Fatalf("read-only handle sees total %d, want 10", got.Stats.Total)
	}
	if err := ro.CreateCampaign(ctx, &core.Campaign{Name: "x"}); err == nil {
		t.Fatal("write through a read-only handle succeeded")
	}
}

// TestBackgroundCheckpoint checks that committed WAL frames are copied back
// into the database file off the writer's path, soon after a write.
func TestBackgroundCheckpoint(t *testing.T) {
	db := MustOpen(t)
	c := MustCampaign(t, db, "ckpt")
	MustInsert(t, db, c.ID, Inputs(0, 5000))
	// Read the WAL index (the -shm file) rather than ask SQLite, which
	// would checkpoint itself: mxFrame is at byte 16 of its header,
	// nBackfill at byte 96 (native byte order).
	deadline := time.Now().Add(5 * time.Second)
	for {
		shm, err := os.ReadFile(db.Path() + "-shm")
		if err != nil || len(shm) < 100 {
			t.Fatalf("read -shm: %d bytes, %v", len(shm), err)
		}
		frames := binary.NativeEndian.Uint32(shm[16:])
		backfilled := binary.NativeEndian.Uint32(shm[96:])
		if frames > 0 && frames == backfilled {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("WAL not checkpointed in the background: %d frames, %d backfilled", frames, backfilled)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPageSizeOfNewDatabase(t *testing.T) {
	db := MustOpen(t)
	var size int
	if err := rawDB(t, db.Path()).QueryRow("PRAGMA page_size").Scan(&size); err != nil || size != 16384 {
		t.Fatalf("page_size %d, %v; want 16384", size, err)
	}
}

// Issue 12 item 13: a database deleted (or replaced) under an open DB is
// noticed: CheckFile and every write return EUNAVAILABLE naming the path,
// and nothing is written into the unlinked file; reads go on.
func TestDeletedDatabaseRefusesWrites(t *testing.T) {
	ctx := context.Background()
	for _, how := range []string{"deleted", "replaced"} {
		t.Run(how, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "campaignd.db")
			db := MustOpenPath(t, path)
			if err := db.CheckFile(); err != nil {
				t.Fatalf("CheckFile on a healthy database: %v", err)
			}
			MustCampaign(t, db, "before")
			for _, f := range []string{path, path + "-wal", path + "-shm"} {
				os.Remove(f)
			}
			if how == "replaced" {
				if err := os.WriteFile(path, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := db.CheckFile()
			if core.ErrorCode(err) != core.EUNAVAILABLE || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), how) {
				t.Fatalf("CheckFile after the file was %s: %v, want EUNAVAILABLE naming it", how, err)
			}
			err = db.CreateCampaign(ctx, &core.Campaign{Name: "x", Sender: "outbox", From: "a@example.org", Subject: "s", Text: "t",
				Concurrency: 1, BatchSize: 1})
			if core.ErrorCode(err) != core.EUNAVAILABLE || !strings.Contains(err.Error(), path) {
				t.Fatalf("a write after the file was %s: %v, want EUNAVAILABLE naming it", how, err)
			}
			if err := db.Checkpoint(ctx); core.ErrorCode(err) != core.EUNAVAILABLE {
				t.Fatalf("checkpoint after the file was %s: %v", how, err)
			}
		})
	}
}
