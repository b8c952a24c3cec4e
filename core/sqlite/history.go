package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/campaignd/campaignd/core"
)

// InsertTick writes a tick record and sets its ID. EINVALID for a nil record.
func (db *DB) InsertTick(ctx context.Context, t *core.TickRecord) error {
	if t == nil {
		return core.Errorf(core.EINVALID, "tick record: required")
	}
	started := orNow(t.Started)
	return db.writeTx(ctx, "record tick", func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO ticks
			(triggered_by, started, duration_ns, processed, sent, failed, retried, throttled, recovered, skipped, error)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			string(t.Trigger), ms(started), int64(t.Duration), t.Processed, t.Sent, t.Failed,
			t.Retried, t.Throttled, t.Recovered, t.Skipped, t.Error).Scan(&t.ID)
	})
}

// Ticks returns the most recent tick records, newest first, at most limit
// of them (limit <= 0 means 100).
func (db *DB) Ticks(ctx context.Context, limit int) ([]*core.TickRecord, error) {
	if limit <= 0 {
		limit = 100
	}
	const op = "list ticks"
	rows, err := db.r.QueryContext(ctx, `SELECT id, triggered_by, started, duration_ns, processed, sent, failed,
		retried, throttled, recovered, skipped, error FROM ticks ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []*core.TickRecord
	for rows.Next() {
		var t core.TickRecord
		var started, dur int64
		if err := rows.Scan(&t.ID, &t.Trigger, &started, &dur, &t.Processed, &t.Sent, &t.Failed,
			&t.Retried, &t.Throttled, &t.Recovered, &t.Skipped, &t.Error); err != nil {
			return nil, internal(op, err)
		}
		t.Started, t.Duration = fromMS(started), time.Duration(dur)
		out = append(out, &t)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	return out, nil
}

// Suppress adds an address to the suppression list, or updates the reason
// and source of one already listed (keeping when it was first listed). The
// address is normalised like a recipient's, and matches recipients without
// regard to ASCII case. CreatedAt defaults to now. EINVALID for an
// unusable address.
func (db *DB) Suppress(ctx context.Context, s core.Suppression) error {
	addr, _, err := core.NormalizeAddress(s.Email)
	if err != nil {
		return err
	}
	s.Email = addr
	if s.CreatedAt.IsZero() {
		s.CreatedAt = time.Now()
	}
	return db.writeTx(ctx, "suppress", func(tx *sql.Tx) error {
		return upsertSuppression(ctx, tx, s)
	})
}

func upsertSuppression(ctx context.Context, tx *sql.Tx, s core.Suppression) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO suppressions (email, reason, source, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (email) DO UPDATE SET reason = excluded.reason, source = excluded.source`,
		s.Email, s.Reason, s.Source, ms(s.CreatedAt))
	return err
}

// Unsuppress removes an address from the suppression list (matched without
// regard to ASCII case); ENOTFOUND if it was not listed.
func (db *DB) Unsuppress(ctx context.Context, email string) error {
	addr, _, err := core.NormalizeAddress(email)
	if err != nil {
		addr = strings.TrimSpace(email) // let a malformed entry be removed too
	}
	return db.writeTx(ctx, "unsuppress", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM suppressions WHERE email = ?`, addr)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		return core.Errorf(core.ENOTFOUND, "%s is not on the suppression list", addr)
	})
}

// Suppressions lists the suppression list, newest first, at most limit
// entries (limit <= 0 means 100).
func (db *DB) Suppressions(ctx context.Context, limit int) ([]*core.Suppression, error) {
	if limit <= 0 {
		limit = 100
	}
	const op = "list suppressions"
	rows, err := db.r.QueryContext(ctx, `SELECT email, reason, source, created_at FROM suppressions
		ORDER BY created_at DESC, email LIMIT ?`, limit)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []*core.Suppression
	for rows.Next() {
		var s core.Suppression
		var at int64
		if err := rows.Scan(&s.Email, &s.Reason, &s.Source, &at); err != nil {
			return nil, internal(op, err)
		}
		s.CreatedAt = fromMS(at)
		out = append(out, &s)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	return out, nil
}
