package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/campaignd/campaignd/core"
)

// BackupInfo describes a copy Backup made.
type BackupInfo struct {
	Path          string // the copy's absolute path
	Bytes         int64  // its size
	SchemaVersion int    // the schema version it carries
}

// Backup writes a consistent copy of the database to dest and makes it
// durable: the copy is the database as of one read transaction, written
// beside dest under a temporary name, fsynced, checked with SQLite's
// integrity_check, moved to dest and its directory fsynced. A crash or an
// error leaves no partial file at dest.
//
// It uses VACUUM INTO on a read-only connection rather than the online
// backup API: one statement copies one snapshot (the backup API restarts
// its copy whenever another connection writes, which a sending daemon does
// many times a second, unless it holds its read lock for the whole copy,
// which is what VACUUM INTO does anyway), it needs no write access or lock
// (so a standalone backup runs beside a daemon or a tick, and a DB from
// OpenReadOnly can make one), and the copy is compact: no free pages, no
// WAL. Writers are not blocked (WAL); the WAL cannot be checkpointed past
// the snapshot until the copy is done.
//
// dest must not exist unless overwrite is set (ECONFLICT naming it); its
// directory must exist. An integrity failure of the copy is EINTERNAL and
// removes it.
func (db *DB) Backup(ctx context.Context, dest string, overwrite bool) (*BackupInfo, error) {
	return backup(ctx, db.r, db.path, dest, overwrite)
}

// BackupFile is Backup of the database file at path, whatever its schema
// version (a database not yet migrated can be saved before it is): it
// opens a read-only connection of its own. ENOTFOUND when path does not
// exist.
func BackupFile(ctx context.Context, path, dest string, overwrite bool) (*BackupInfo, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, core.Errorf(core.ENOTFOUND, "database %s does not exist", path)
		}
		return nil, fmt.Errorf("backup: %w", err)
	}
	r, err := openReader(ctx, path, 1, DefaultReadCacheKiB)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return backup(ctx, r, path, dest, overwrite)
}

// backup is Backup through the read pool r on the database at src.
func backup(ctx context.Context, r *sql.DB, src, dest string, overwrite bool) (*BackupInfo, error) {
	const op = "backup"
	abs, err := filepath.Abs(dest)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if same, err := samePath(abs, src); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	} else if same {
		return nil, core.Errorf(core.EINVALID, "backup: %s is the database itself", abs)
	}
	if !overwrite {
		if _, err := os.Lstat(abs); err == nil {
			return nil, core.Errorf(core.ECONFLICT, "backup: %s already exists (--force replaces it)", abs)
		}
	}
	dir := filepath.Dir(abs)
	// VACUUM INTO wants a file that is missing or empty; an empty one made
	// here has mode 0600 whatever the umask (the copy holds every address).
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(abs)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	tmpPath := tmp.Name()
	_ = tmp.Close()
	done := false
	defer func() {
		if !done {
			_ = os.Remove(tmpPath)
		}
	}()
	conn, err := r.Conn(ctx)
	if err != nil {
		return nil, internal(op, err)
	}
	_, err = conn.ExecContext(ctx, "VACUUM INTO ?", tmpPath)
	_ = conn.Close()
	if err != nil {
		return nil, internal(op, err)
	}
	info, err := checkCopy(ctx, tmpPath)
	if err != nil {
		return nil, err
	}
	if err := syncFile(tmpPath); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if overwrite {
		err = os.Rename(tmpPath, abs)
	} else if err = os.Link(tmpPath, abs); err == nil {
		// A hard link never replaces: a file that appeared at dest since
		// the check above makes it fail rather than vanish.
		_ = os.Remove(tmpPath)
	} else if errors.Is(err, os.ErrExist) {
		return nil, core.Errorf(core.ECONFLICT, "backup: %s already exists (--force replaces it)", abs)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	done = true
	if err := syncFile(dir); err != nil {
		return nil, fmt.Errorf("%s: sync %s: %w", op, dir, err)
	}
	info.Path = abs
	return info, nil
}

// checkCopy runs integrity_check on a fresh copy and reads its size and
// schema version.
func checkCopy(ctx context.Context, path string) (*BackupInfo, error) {
	// Not through dsn: the copy is a plain rollback-journal file and
	// nothing may turn it into WAL or write to it.
	p := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	c, err := sql.Open("sqlite3", "file:"+p+"?mode=ro")
	if err != nil {
		return nil, fmt.Errorf("backup: check the copy: %w", err)
	}
	defer c.Close()
	rows, err := c.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return nil, internal("backup: check the copy", err)
	}
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return nil, internal("backup: check the copy", err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Close(); err != nil {
		return nil, internal("backup: check the copy", err)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("backup: check the copy", err)
	}
	if len(problems) > 0 {
		return nil, core.Errorf(core.EINTERNAL, "backup: the copy failed SQLite's integrity check: %s", strings.Join(problems, "; "))
	}
	info := &BackupInfo{}
	if err := c.QueryRowContext(ctx, "PRAGMA user_version").Scan(&info.SchemaVersion); err != nil {
		return nil, internal("backup: check the copy", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	info.Bytes = fi.Size()
	return info, nil
}

// syncFile fsyncs a file or a directory.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// samePath reports whether a and b name the same existing file.
func samePath(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}
