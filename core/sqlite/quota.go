package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/campaignd/campaignd/core"
)

// The sender_quota table: one row per sender holding its windows' bucket
// counts (core.SenderQuota), so a claim under a quota costs one primary-key
// read and one write of that row, whatever the window or the traffic.

// ClaimQuota implements core.Store: Claim with the sender's budget read,
// and spent, in the claim's own immediate transaction.
func (db *DB) ClaimQuota(ctx context.Context, q core.Quota, campaignID int64, n int, token string, leaseUntil, now time.Time) ([]*core.Recipient, error) {
	if q.Sender == "" {
		return nil, core.Errorf(core.EINVALID, "claim: quota without a sender")
	}
	return db.claim(ctx, &q, campaignID, n, token, leaseUntil, now)
}

// quotaBudget reads q's sender row in tx and returns it with n cut to the
// budget left at now (0 while blocked).
func quotaBudget(ctx context.Context, tx *sql.Tx, q *core.Quota, n int, now time.Time) (*core.SenderQuota, int, error) {
	sq, err := readQuota(ctx, tx, q.Sender)
	if err != nil {
		return nil, 0, err
	}
	return sq, sq.Remaining(q.Rates, now, n), nil
}

// spendQuota counts n claimed sends at now in sq's windows and writes the
// row back (nothing to write for a sender without rates).
func spendQuota(ctx context.Context, tx *sql.Tx, sq *core.SenderQuota, rates []core.Rate, n int, now time.Time) error {
	if len(rates) == 0 {
		return nil
	}
	sq.Take(rates, n, now)
	return writeQuota(ctx, tx, sq, now)
}

// queryRower is a *sql.Tx or a *sql.DB.
type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const quotaCols = `sender, windows, blocked_until, blocked_reason`

// readQuota reads sender's row; a sender without one has the zero state.
func readQuota(ctx context.Context, q queryRower, sender string) (*core.SenderQuota, error) {
	sq, err := scanQuota(q.QueryRowContext(ctx, `SELECT `+quotaCols+` FROM sender_quota WHERE sender = ?`, sender))
	if errors.Is(err, sql.ErrNoRows) {
		return &core.SenderQuota{Sender: sender}, nil
	}
	return sq, err
}

func scanQuota(row interface{ Scan(...any) error }) (*core.SenderQuota, error) {
	var sq core.SenderQuota
	var windows string
	var until sql.NullInt64
	var reason sql.NullString
	if err := row.Scan(&sq.Sender, &windows, &until, &reason); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(windows), &sq.Windows); err != nil {
		return nil, fmt.Errorf("sender %s: quota windows: %w", sq.Sender, err)
	}
	if until.Valid {
		sq.BlockedUntil = fromMS(until.Int64)
	}
	sq.BlockedReason = reason.String
	return &sq, nil
}

// writeQuota stores sq's row.
func writeQuota(ctx context.Context, tx *sql.Tx, sq *core.SenderQuota, now time.Time) error {
	windows, err := json.Marshal(sq.Windows)
	if err != nil {
		return err
	}
	if sq.Windows == nil {
		windows = []byte("[]")
	}
	var until sql.NullInt64
	if !sq.BlockedUntil.IsZero() {
		until = sql.NullInt64{Int64: ms(sq.BlockedUntil), Valid: true}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO sender_quota (sender, windows, blocked_until, blocked_reason, updated_at)
		VALUES (?1, ?2, ?3, ?4, ?5)
		ON CONFLICT (sender) DO UPDATE SET windows = ?2, blocked_until = ?3, blocked_reason = ?4, updated_at = ?5`,
		sq.Sender, string(windows), until, sql.NullString{String: sq.BlockedReason, Valid: sq.BlockedReason != ""}, ms(now))
	return err
}

// SenderQuota implements core.Store.
func (db *DB) SenderQuota(ctx context.Context, sender string) (*core.SenderQuota, error) {
	sq, err := readQuota(ctx, db.r, sender)
	return sq, internal("read sender quota", err)
}

// SenderQuotas implements core.Store.
func (db *DB) SenderQuotas(ctx context.Context) ([]*core.SenderQuota, error) {
	const op = "read sender quotas"
	rows, err := db.r.QueryContext(ctx, `SELECT `+quotaCols+` FROM sender_quota ORDER BY sender`)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []*core.SenderQuota
	for rows.Next() {
		sq, err := scanQuota(rows)
		if err != nil {
			return nil, internal(op, err)
		}
		out = append(out, sq)
	}
	return out, internal(op, rows.Err())
}

// RefundQuota implements core.Store.
func (db *DB) RefundQuota(ctx context.Context, q core.Quota, n int, claimedAt, now time.Time) error {
	if n < 1 || len(q.Rates) == 0 {
		return nil
	}
	now = orNow(now)
	return db.writeTx(ctx, "refund sender quota", func(tx *sql.Tx) error {
		sq, err := readQuota(ctx, tx, q.Sender)
		if err != nil || len(sq.Windows) == 0 {
			return err
		}
		sq.Refund(q.Rates, n, claimedAt, now)
		return writeQuota(ctx, tx, sq, now)
	})
}

// BlockSender implements core.Store.
func (db *DB) BlockSender(ctx context.Context, sender string, until time.Time, reason string, now time.Time) error {
	now = orNow(now)
	return db.writeTx(ctx, "block sender", func(tx *sql.Tx) error {
		sq, err := readQuota(ctx, tx, sender)
		if err != nil {
			return err
		}
		if !until.After(sq.BlockedUntil) && sq.Blocked(now) {
			return nil // a later block stands
		}
		sq.BlockedUntil, sq.BlockedReason = until, reason
		return writeQuota(ctx, tx, sq, now)
	})
}

// dueWaitingSQL makes the QUEUED messages of sender ?2's campaigns that
// wait past ?1 due at ?1: per campaign, a range of the claim index (only
// the waiting messages, never the whole queue). Those the throttled
// replies put back cannot be told from those in a transient backoff (a
// message handed back unsent keeps its last error): both go.
const dueWaitingSQL = `UPDATE recipients SET next_attempt_at = ?1, updated_at = ?1
	WHERE status = 'QUEUED' AND next_attempt_at > ?1
	AND campaign_id IN (SELECT id FROM campaigns WHERE sender = ?2)`

// UnblockSender implements core.Store.
func (db *DB) UnblockSender(ctx context.Context, sender string, now time.Time) (*core.SenderUnblock, error) {
	now = orNow(now)
	var out *core.SenderUnblock
	err := db.writeTx(ctx, "unblock sender", func(tx *sql.Tx) error {
		out = &core.SenderUnblock{Sender: sender}
		sq, err := readQuota(ctx, tx, sender)
		if err != nil || sq.BlockedUntil.IsZero() {
			return err // no row, or no block: nothing to write
		}
		if sq.Blocked(now) {
			until := sq.BlockedUntil
			out.WasBlocked, out.BlockedUntil, out.Reason = true, &until, sq.BlockedReason
			// The throttled replies that set the block held their tick's
			// messages back as long: they are due with the lift, not a
			// day later.
			res, err := tx.ExecContext(ctx, dueWaitingSQL, ms(now), sender)
			if err != nil {
				return err
			}
			if out.DueNow, err = res.RowsAffected(); err != nil {
				return err
			}
		}
		// A block already past is cleared too: it only kept its reply.
		sq.BlockedUntil, sq.BlockedReason = time.Time{}, ""
		return writeQuota(ctx, tx, sq, now)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
