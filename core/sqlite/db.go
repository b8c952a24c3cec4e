// Package sqlite implements core.Store on one SQLite file.
//
// Writes go through a single writer connection opened with
// _txlock=immediate (every transaction takes the write lock at BEGIN, so a
// read-then-write never fails halfway with SQLITE_BUSY), WAL journaling and
// synchronous=FULL (an acknowledged commit survives power loss). Reads go
// through a separate read-only pool, so stats and listings run beside a
// writer. Every recipient status change updates the campaign's counter
// columns in the same transaction; stats are one row read.
//
// The schema lives in embedded, numbered migrations (migrations/NNNN_*.sql)
// applied in a transaction by Open. Times are stored as INTEGER unix
// milliseconds and returned in UTC.
//
// Performance notes, measured on a 2-core machine (see bench_test.go):
//   - New databases use 16 KiB pages: a third less CPU for execute and
//     import than 4 KiB, since each WAL frame costs two write system calls.
//   - A separate connection checkpoints the WAL in the background (PASSIVE,
//     no write lock), so a large commit does not also pay for copying its
//     pages into the database file.
//   - Multi-row writes avoid statement journals: import uses INSERT OR
//     IGNORE (duplicates are the only expected conflict) and the recipient
//     foreign key is DEFERRABLE INITIALLY DEFERRED, so no statement can
//     abort half-way; the status CHECK is an OR chain, not IN (...).
//   - Each query whose plan matters names its index or constrains the
//     planner, and plan_test.go pins the plans.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/mattn/go-sqlite3"
	"golang.org/x/sys/unix"
)

var _ core.Store = (*DB)(nil)

// DB is a campaignd database: one writer connection and a read-only pool
// on the same file. It implements core.Store and is safe for concurrent
// use. Several DB values (in one or several processes) may share a file:
// SQLite serialises their writes, waiting up to the busy timeout.
type DB struct {
	path string
	w    *sql.DB // one connection; nil when opened read-only
	r    *sql.DB // read-only pool
	ckpt *checkpointer
	// file identifies the file Open opened, and gone is set once the
	// path no longer leads to it (see CheckFile).
	file fileID
	gone atomic.Pointer[string]
}

// fileID is a file's identity: its device and inode numbers.
type fileID struct{ dev, ino uint64 }

func statFileID(path string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileID{}, err
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, nil
}

// Defaults for Open's options.
const (
	DefaultReadConns    = 4
	DefaultCacheKiB     = 32 << 10 // writer page cache: 32 MiB
	DefaultReadCacheKiB = 4 << 10  // per read connection: 4 MiB
)

const (
	busyTimeoutMillis = 10000
	stmtCacheSize     = 32
	// pageSize is set when Open creates a database. 16 KiB pages cut the
	// CPU of execute and import by a third against 4 KiB ones (fewer WAL
	// frames, each two write system calls, fewer b-tree rebalances); a
	// claim still writes only a handful of pages.
	pageSize = 16 << 10
	// autoCheckpointPages is the writer's own checkpoint threshold, a
	// backstop: the background checkpointer normally keeps the WAL well
	// below it, so large commits do not pay for a checkpoint inline.
	autoCheckpointPages = 16384 // 256 MiB of 16 KiB pages
	// journalSizeLimit is what a reset WAL file is truncated back to.
	journalSizeLimit = 64 << 20
)

// driverName is a mattn/go-sqlite3 driver whose connections get the
// write-side pragmas a DSN cannot carry.
const driverName = "sqlite3_campaignd"

func init() {
	sql.Register(driverName, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		if _, err := c.Exec(fmt.Sprintf(`PRAGMA wal_autocheckpoint = %d; PRAGMA journal_size_limit = %d; PRAGMA temp_store = MEMORY`,
			autoCheckpointPages, journalSizeLimit), nil); err != nil {
			return err
		}
		return registerFuncs(c)
	}})
}

type options struct {
	readConns    int
	cacheKiB     int
	readCacheKiB int
	noMigrate    bool
}

// Option tunes Open.
type Option func(*options)

// WithoutMigration makes Open refuse a database with pending migrations
// (EINVALID, saying to run `campaignd migrate`) instead of applying them:
// for callers that do not hold the database lock exclusively, so that a
// schema never changes under another process's tick.
func WithoutMigration() Option {
	return func(o *options) { o.noMigrate = true }
}

// WithReadConns sets the size of the read-only pool (default
// DefaultReadConns; values below 1 mean 1).
func WithReadConns(n int) Option {
	return func(o *options) { o.readConns = max(n, 1) }
}

// WithCacheKiB sets the writer connection's page cache in KiB (default
// DefaultCacheKiB). The cache is allocated as pages are touched, so it
// bounds rather than fixes the writer's memory; larger values speed up
// imports into very large campaigns.
func WithCacheKiB(kib int) Option {
	return func(o *options) { o.cacheKiB = max(kib, 256) }
}

// WithReadCacheKiB sets each read connection's page cache in KiB (default
// DefaultReadCacheKiB). Like the writer's, it fills as pages are touched
// and stays filled: a long-running process holds up to WithCacheKiB +
// readConns x WithReadCacheKiB of cache.
func WithReadCacheKiB(kib int) Option {
	return func(o *options) { o.readCacheKiB = max(kib, 256) }
}

// Open opens (creating it with mode 0600 when missing) the database at
// path and applies any pending migrations. The -wal and -shm files SQLite
// creates beside it inherit the file's mode. It returns an EINVALID error
// when the file is not a campaignd database or was written by a newer
// campaignd, EUNAVAILABLE when another process kept it locked past the
// busy timeout.
func Open(ctx context.Context, path string, opts ...Option) (*DB, error) {
	o := options{readConns: DefaultReadConns, cacheKiB: DefaultCacheKiB, readCacheKiB: DefaultReadCacheKiB}
	for _, opt := range opts {
		opt(&o)
	}
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, core.Errorf(core.EINVALID, "database path %q: must be a file path", path)
	}
	created, err := createFile(path)
	if err != nil {
		return nil, err
	}
	if created {
		if err := initFile(ctx, path); err != nil {
			return nil, err
		}
	}
	db := &DB{path: path}
	if db.file, err = statFileID(path); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	w, err := sql.Open(driverName, dsn(path, false, o.cacheKiB))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	db.w = w
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return nil, openError(path, err)
	}
	if o.noMigrate {
		err = checkSchema(ctx, w, path)
	} else {
		err = migrate(ctx, w)
	}
	if err != nil {
		_ = w.Close()
		return nil, openError(path, err)
	}
	if db.r, err = openReader(ctx, path, o.readConns, o.readCacheKiB); err != nil {
		_ = w.Close()
		return nil, err
	}
	if db.ckpt, err = startCheckpointer(ctx, path); err != nil {
		_ = db.r.Close()
		_ = w.Close()
		return nil, err
	}
	return db, nil
}

// OpenReadOnly opens an existing database for reading only: no file is
// created, no migration is applied and no lock is needed, so read-only
// commands can run beside a daemon or a tick (WAL). Every write method of
// the returned DB fails with an EINTERNAL error. It returns ENOTFOUND when
// the file does not exist and EINVALID when its schema is not the one this
// build expects (open it read-write once to migrate).
func OpenReadOnly(ctx context.Context, path string, opts ...Option) (*DB, error) {
	o := options{readConns: DefaultReadConns, readCacheKiB: DefaultReadCacheKiB}
	for _, opt := range opts {
		opt(&o)
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, core.Errorf(core.ENOTFOUND, "database %s does not exist", path)
		}
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	r, err := openReader(ctx, path, o.readConns, o.readCacheKiB)
	if err != nil {
		return nil, err
	}
	if err := checkSchema(ctx, r, path); err != nil {
		_ = r.Close()
		return nil, openError(path, err)
	}
	return &DB{path: path, r: r}, nil
}

// checkSchema returns nil when the database's schema is the one this build
// expects, and otherwise the EINVALID error that says what to do.
func checkSchema(ctx context.Context, q querier, path string) error {
	var v int
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if latest := SchemaVersion(); v > latest {
		return errNewerSchema(v)
	} else if v != latest {
		return core.Errorf(core.EINVALID,
			"database %s has schema version %d, this campaignd expects %d: run `campaignd migrate`", path, v, latest)
	}
	return nil
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// CheckFile reports whether the database's path still leads to the file
// Open opened. A database deleted (or replaced, e.g. by a restore that
// renamed another file over it) under a running process would otherwise
// take every later write into an unlinked file, lost when the process
// exits. Once CheckFile finds the path gone or leading to another file, it
// and every later write return an EUNAVAILABLE error naming the path,
// until the DB is closed and opened again: nothing is written anywhere.
// Reads go on from the open file. Every write transaction checks first (a
// stat, negligible beside its fsync); a long-running process calls it
// periodically too, to log the loss while idle. A stat failing for another
// reason than a missing file is not taken as a loss.
func (db *DB) CheckFile() error {
	if msg := db.gone.Load(); msg != nil {
		return &core.Error{Code: core.EUNAVAILABLE, Message: *msg}
	}
	id, err := statFileID(db.path)
	var what string
	switch {
	case errors.Is(err, unix.ENOENT):
		what = "was deleted"
	case err != nil || id == db.file:
		return nil
	default:
		what = "was replaced by another file"
	}
	msg := fmt.Sprintf("database %s %s while campaignd had it open: writes are refused so that none goes into the old, unlinked file; "+
		"restore the file (or put the new one in place) and restart campaignd", db.path, what)
	db.gone.CompareAndSwap(nil, &msg)
	return &core.Error{Code: core.EUNAVAILABLE, Message: *db.gone.Load()}
}

// Close stops the background checkpointer and closes the pools. The
// writer's close, the last, checkpoints the WAL into the database file.
func (db *DB) Close() error {
	var errs []error
	if db.ckpt != nil {
		errs = append(errs, db.ckpt.close())
	}
	if db.r != nil {
		errs = append(errs, db.r.Close())
	}
	if db.w != nil {
		errs = append(errs, db.w.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// Checkpoint copies the WAL back into the database file and truncates it.
// SQLite checkpoints on its own after commits; this is for tools that want
// a compact file now (after a large import, before a backup).
func (db *DB) Checkpoint(ctx context.Context) error {
	if db.w == nil {
		return errReadOnly("checkpoint")
	}
	if err := db.CheckFile(); err != nil {
		return err
	}
	if _, err := db.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return internal("checkpoint", err)
	}
	return nil
}

func openReader(ctx context.Context, path string, conns, cacheKiB int) (*sql.DB, error) {
	r, err := sql.Open("sqlite3", dsn(path, true, cacheKiB))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	r.SetMaxOpenConns(conns)
	r.SetMaxIdleConns(conns)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	if err := r.PingContext(ctx); err != nil {
		_ = r.Close()
		return nil, openError(path, err)
	}
	return r, nil
}

// createFile creates the database file with mode 0600 when it does not
// exist yet, so SQLite (and the -wal/-shm files, which copy the database's
// mode) never create it with the umask's default. It reports whether it
// created the file; an existing empty file counts as new.
func createFile(path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		fi, err := os.Stat(path)
		if err != nil {
			return false, fmt.Errorf("open database %s: %w", path, err)
		}
		return fi.Size() == 0, nil
	}
	if err != nil {
		return false, fmt.Errorf("create database %s: %w", path, err)
	}
	if err := f.Chmod(0o600); err != nil { // whatever the umask
		_ = f.Close()
		return false, fmt.Errorf("create database %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return false, fmt.Errorf("create database %s: %w", path, err)
	}
	return true, nil
}

// initFile sets the page size of a new, empty database and switches it to
// WAL, which fixes the page size for good; it must run before any
// connection that asks for WAL in its DSN.
func initFile(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite3", dsn(path, false, 0)[:strings.IndexByte(dsn(path, false, 0), '?')])
	if err != nil {
		return fmt.Errorf("create database %s: %w", path, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, fmt.Sprintf("PRAGMA page_size = %d; PRAGMA journal_mode = WAL", pageSize)); err != nil {
		return fmt.Errorf("create database %s: %w", path, err)
	}
	return nil
}

// dsn builds a mattn/go-sqlite3 URI for path.
func dsn(path string, readOnly bool, cacheKiB int) string {
	// Escape what a URI would otherwise read as syntax.
	p := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	q := fmt.Sprintf("_busy_timeout=%d&_stmt_cache_size=%d&_cache_size=-%d", busyTimeoutMillis, stmtCacheSize, cacheKiB)
	if readOnly {
		return "file:" + p + "?mode=ro&" + q
	}
	return "file:" + p + "?_txlock=immediate&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1&" + q
}

// openError turns a failure to open or migrate into a coded error.
func openError(path string, err error) error {
	var ce *core.Error
	if errors.As(err, &ce) {
		return err
	}
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrNotADB {
		return &core.Error{Code: core.EINVALID, Message: fmt.Sprintf("%s is not a campaignd database", path), Err: err}
	}
	if errors.As(err, &se) && (se.Code == sqlite3.ErrCantOpen || se.Code == sqlite3.ErrReadonly) &&
		errors.Is(unix.Access(filepath.Dir(path), unix.W_OK), unix.EROFS) {
		// SQLite says "unable to open database file: no such file or
		// directory" for a file that exists: in WAL mode even a reader
		// needs to create the -shm file beside it.
		return &core.Error{Code: core.EUNAVAILABLE, Err: err, Message: fmt.Sprintf(
			"database %s is on a read-only file system, where SQLite cannot open it (WAL mode needs its -shm file beside it): remount it read-write", path)}
	}
	return internal("open database "+path, err)
}

// internal returns a coded error unchanged, maps SQLite's busy and locked
// errors, a read-only database and a full disk to EUNAVAILABLE with a
// message for the operator, and wraps anything else with the operation.
func internal(op string, err error) error {
	if err == nil {
		return nil
	}
	var ce *core.Error
	if errors.As(err, &ce) {
		return err
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrBusy, sqlite3.ErrLocked:
			return &core.Error{Code: core.EUNAVAILABLE, Op: op,
				Message: "database is busy: another process held its write lock past the timeout", Err: err}
		case sqlite3.ErrReadonly:
			return &core.Error{Code: core.EUNAVAILABLE, Op: op, Err: err,
				Message: "the database is read-only: check the mount of its file system and the permissions and attributes of the file and its directory"}
		case sqlite3.ErrFull:
			return errDiskFull(op, err)
		case sqlite3.ErrIoErr:
			// A reader on a full disk cannot grow the -shm file WAL mode
			// needs: SQLite reports an I/O error whose errno says why.
			if se.SystemErrno == syscall.ENOSPC || se.SystemErrno == syscall.EDQUOT {
				return errDiskFull(op, err)
			}
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// errDiskFull is the one message for a full disk (or quota), whatever
// SQLite called it.
func errDiskFull(op string, err error) error {
	return &core.Error{Code: core.EUNAVAILABLE, Op: op, Err: err,
		Message: "database or disk is full: free space on the database's file system and try again (even reading needs room for its -shm file)"}
}

func errReadOnly(op string) error {
	return &core.Error{Code: core.EINTERNAL, Op: op, Message: "database was opened read-only"}
}

// writeTx runs fn in one immediate transaction on the writer connection.
// Coded errors come back unchanged; others are wrapped with op.
func (db *DB) writeTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	if db.w == nil {
		return errReadOnly(op)
	}
	if err := db.CheckFile(); err != nil {
		return err
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return internal(op, fmt.Errorf("begin: %w", err))
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return internal(op, err)
	}
	if err := tx.Commit(); err != nil {
		return internal(op, fmt.Errorf("commit: %w", err))
	}
	db.ckpt.nudge()
	return nil
}

// ms converts a time to stored unix milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

// fromMS converts stored unix milliseconds to a UTC time.
func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func fromNullMS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}

// nowMS is the current time at the stored precision, in UTC.
func nowMS() time.Time { return fromMS(time.Now().UnixMilli()) }

// orNow returns t, or the current time when t is zero.
func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

type scanner interface {
	Scan(dest ...any) error
}

// querier is what *sql.DB and *sql.Tx share for reading.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// queryIDs runs query on q and returns the one integer column of its rows
// (ids), read to the end before it returns, so the caller may write in the
// same transaction next.
func queryIDs(ctx context.Context, q querier, query string, args ...any) ([]int64, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
