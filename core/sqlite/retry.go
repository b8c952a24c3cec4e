package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/campaignd/campaignd/core"
)

// retrySQL requeues FAILED rows through the partial index of FAILED rows.
const retrySQL = `UPDATE recipients INDEXED BY recipients_failed SET
		status = 'QUEUED', attempts = 0, queued_at = ?1, next_attempt_at = ?1, updated_at = ?1,
		lease_until = NULL, claim_token = NULL
	WHERE campaign_id = ?2 AND status = 'FAILED' AND (?3 = '' OR last_error_class = ?3)
		AND (?4 = 0 OR last_error_code = ?4)`

// Retry moves a campaign's FAILED recipients (only those whose last error
// class is errorClass, when it is not empty) back to QUEUED due now with
// attempts reset to 0, keeping their last error for the record, and
// returns how many moved; a code other than 0 also requires that last reply
// code (one group of core.Engine.Failures). It walks the partial index of FAILED rows, not
// the campaign. BOUNCED recipients stay bounced. core.Transition decides,
// from the status read in the same transaction, whether the retry is legal
// (its ECONFLICT otherwise) and where the campaign goes when rows come
// back: a COMPLETED campaign reopens to SENDING. ENOTFOUND for an unknown
// campaign.
func (db *DB) Retry(ctx context.Context, campaignID int64, errorClass core.ErrorClass, code int, now time.Time) (int64, error) {
	at := ms(orNow(now))
	var n int64
	err := db.writeTx(ctx, "retry", func(tx *sql.Tx) error {
		st, err := campaignStatus(ctx, tx, campaignID)
		if err != nil {
			return err
		}
		// Read and reopened in this transaction: a tick completing the
		// campaign, or a cancel, since the caller looked can never leave
		// requeued rows under a COMPLETED or CANCELLED campaign. Retry
		// does not depend on where a PAUSED campaign was paused from.
		to, err := core.Transition(st, "", core.ActionRetry)
		if err != nil {
			return fmt.Errorf("campaign %d: %w", campaignID, err)
		}
		res, err := tx.ExecContext(ctx, retrySQL, at, campaignID, string(errorClass), code)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		if to != st {
			_, err = tx.ExecContext(ctx, `UPDATE campaigns SET failed = failed - ?1, queued = queued + ?1,
				status = ?2, updated_at = ?3, finished_at = NULL WHERE id = ?4`, n, string(to), at, campaignID)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE campaigns SET failed = failed - ?1, queued = queued + ?1 WHERE id = ?2`, n, campaignID)
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
