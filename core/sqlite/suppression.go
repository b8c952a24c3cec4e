package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/campaignd/campaignd/core"
)

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

// SuppressedAmong returns which of emails are on the suppression list
// (compared without regard to ASCII case), in one query.
func (db *DB) SuppressedAmong(ctx context.Context, emails []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(emails) == 0 {
		return out, nil
	}
	args := make([]any, len(emails))
	for i, e := range emails {
		args[i] = e
	}
	rows, err := db.r.QueryContext(ctx, `SELECT email FROM suppressions WHERE email IN (?`+
		strings.Repeat(",?", len(emails)-1)+`)`, args...)
	if err != nil {
		return nil, internal("check suppressions", err)
	}
	defer rows.Close()
	listed := map[string]bool{}
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			return nil, internal("check suppressions", err)
		}
		listed[strings.ToLower(e)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, internal("check suppressions", err)
	}
	for _, e := range emails {
		if listed[strings.ToLower(e)] {
			out[e] = true
		}
	}
	return out, nil
}

// suppressedIn returns the addresses of rs on the suppression list, with
// one query (none when the list is empty).
func suppressedIn(ctx context.Context, tx *sql.Tx, rs []core.RecipientInput) (map[string]bool, error) {
	var listed bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM suppressions)`).Scan(&listed); err != nil {
		return nil, fmt.Errorf("check suppressions: %w", err)
	}
	if !listed {
		return nil, nil
	}
	buf := make([]byte, 0, len(rs)*32)
	buf = append(buf, '[')
	for i, r := range rs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, r.Email)
	}
	buf = append(buf, ']')
	rows, err := tx.QueryContext(ctx, `SELECT j.value FROM json_each(?) AS j
		WHERE EXISTS (SELECT 1 FROM suppressions AS s WHERE s.email = j.value)`, string(buf))
	if err != nil {
		return nil, fmt.Errorf("check suppressions: %w", err)
	}
	defer rows.Close()
	set := make(map[string]bool)
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			return nil, fmt.Errorf("check suppressions: %w", err)
		}
		set[e] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("check suppressions: %w", err)
	}
	return set, nil
}
