package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/campaignd/campaignd/core"
)

// Suppress adds addresses to the suppression list, or updates the reason
// and source of those already listed (keeping when they were first listed),
// all in one transaction: every one is listed, or none. Each address is
// normalised like a recipient's, and matches recipients without regard to
// ASCII case. CreatedAt defaults to now. EINVALID naming the first
// unusable address.
func (db *DB) Suppress(ctx context.Context, ss ...core.Suppression) error {
	now := time.Now()
	return db.writeTx(ctx, "suppress", func(tx *sql.Tx) error {
		for _, s := range ss {
			addr, _, err := core.NormalizeAddress(s.Email)
			if err != nil {
				return err
			}
			s.Email = addr
			if s.CreatedAt.IsZero() {
				s.CreatedAt = now
			}
			if err := upsertSuppression(ctx, tx, s); err != nil {
				return err
			}
		}
		return nil
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
// entries (see core.ListLimit).
func (db *DB) Suppressions(ctx context.Context, limit int) ([]*core.Suppression, error) {
	limit, err := core.ListLimit("limit", limit)
	if err != nil {
		return nil, err
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
// (compared without regard to ASCII case), nil when none is: the claim-time
// re-check.
func (db *DB) SuppressedAmong(ctx context.Context, emails []string) (map[string]bool, error) {
	set, err := suppressedAmong(ctx, db.r, len(emails), func(i int) string { return emails[i] })
	if err != nil {
		return nil, internal("check suppressions", err)
	}
	return set, nil
}

// suppressedAmong is the one answer to "which of these addresses are
// suppressed", for the claim-time re-check and for InsertRecipients (which
// asks inside its transaction, once per chunk). email(i) is the i-th of n
// addresses; the result holds those listed, compared without regard to
// ASCII case (the column's NOCASE collation), spelt as given, and is nil
// when none is. An empty list costs one indexed read; otherwise the
// addresses go in as one JSON array bound to one parameter, so the
// statement text, and its cached preparation, is the same for any n.
func suppressedAmong(ctx context.Context, q querier, n int, email func(int) string) (map[string]bool, error) {
	if n == 0 {
		return nil, nil
	}
	var listed bool
	if err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM suppressions)`).Scan(&listed); err != nil {
		return nil, fmt.Errorf("check suppressions: %w", err)
	}
	if !listed {
		return nil, nil
	}
	buf := make([]byte, 0, n*32)
	buf = append(buf, '[')
	for i := range n {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, email(i))
	}
	buf = append(buf, ']')
	rows, err := q.QueryContext(ctx, `SELECT j.value FROM json_each(?) AS j
		WHERE EXISTS (SELECT 1 FROM suppressions AS s WHERE s.email = j.value)`, string(buf))
	if err != nil {
		return nil, fmt.Errorf("check suppressions: %w", err)
	}
	defer rows.Close()
	var set map[string]bool
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			return nil, fmt.Errorf("check suppressions: %w", err)
		}
		if set == nil {
			set = make(map[string]bool)
		}
		set[e] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("check suppressions: %w", err)
	}
	return set, nil
}
