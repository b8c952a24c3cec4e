package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/campaignd/campaignd/core"
)

// FailCancelled fails the PENDING and QUEUED recipients of every CANCELLED
// campaign that still has some (by its counters: when none has, it only
// reads), with class cancelled; see core.Store.FailCancelled.
func (db *DB) FailCancelled(ctx context.Context, now time.Time) (int64, error) {
	const left = `status = 'CANCELLED' AND (pending > 0 OR queued > 0)`
	var found bool
	if err := db.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM campaigns WHERE `+left+`)`).Scan(&found); err != nil {
		return 0, internal("fail cancelled", err)
	}
	if !found {
		return 0, nil
	}
	var n int64
	err := db.writeTx(ctx, "fail cancelled", func(tx *sql.Tx) error {
		n = 0
		ids, err := queryIDs(ctx, tx, `SELECT id FROM campaigns WHERE `+left)
		if err != nil {
			return err
		}
		for _, id := range ids {
			k, err := failUnsent(ctx, tx, id, orNow(now))
			if err != nil {
				return err
			}
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// failUnsentSQL fails a cancelled campaign's PENDING and QUEUED rows in
// one walk of its id range, as execute walks it. A row requeued in doubt
// (its last send's outcome unknown) gets ?7: it may have been delivered.
const failUnsentSQL = `UPDATE recipients SET status = 'FAILED', updated_at = ?1, next_attempt_at = NULL,
		last_error = CASE WHEN last_error_class = 'in_doubt' THEN ?7 ELSE ?6 END,
		last_error_class = ?5, last_error_code = NULL, last_enhanced_code = NULL
	WHERE id BETWEEN ?2 AND ?3 AND +campaign_id = ?4 AND (status = 'PENDING' OR status = 'QUEUED')`

// failUnsent fails campaign id's PENDING and QUEUED recipients inside tx
// with class cancelled (see failUnsentAs).
func failUnsent(ctx context.Context, tx *sql.Tx, id int64, now time.Time) (int64, error) {
	return failUnsentAs(ctx, tx, id, now, core.ClassCancelled, "not sent: the campaign was cancelled",
		"not resent: the campaign was cancelled; the last attempt's outcome is unknown (it may have been delivered)")
}

// failUnsentAs fails campaign id's PENDING and QUEUED recipients inside tx
// with class and message (inDoubt for a row whose last send's outcome is
// unknown: "not sent" would be untrue of it), moving the counters with
// them, and returns how many it failed. SENDING rows (in flight under a
// lease) are left alone.
func failUnsentAs(ctx context.Context, tx *sql.Tx, id int64, now time.Time, class core.ErrorClass, message, inDoubt string) (int64, error) {
	var first, last sql.NullInt64
	var pending, queued int64
	if err := tx.QueryRowContext(ctx, `SELECT first_recipient_id, last_recipient_id, pending, queued FROM campaigns WHERE id = ?`,
		id).Scan(&first, &last, &pending, &queued); err != nil {
		return 0, fmt.Errorf("fail unsent recipients: %w", err)
	}
	if !first.Valid || pending+queued == 0 {
		return 0, nil
	}
	res, err := tx.ExecContext(ctx, failUnsentSQL, ms(now), first.Int64, last.Int64, id, string(class), message, inDoubt)
	if err != nil {
		return 0, fmt.Errorf("fail unsent recipients: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	// The counters say how many were PENDING and how many QUEUED (they
	// move with every status change); n is what actually moved.
	if _, err := tx.ExecContext(ctx, `UPDATE campaigns SET pending = 0, queued = 0, failed = failed + ?1 WHERE id = ?2`,
		n, id); err != nil {
		return 0, fmt.Errorf("fail unsent recipients: %w", err)
	}
	return n, nil
}
