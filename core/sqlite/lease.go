package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/campaignd/campaignd/core"
)

// recoverLeasesSQL applies an expired-lease rule to every expired lease,
// through the partial index of SENDING rows.
const recoverLeasesSQL = `UPDATE recipients INDEXED BY recipients_lease SET
		status = CASE WHEN attempts < ?2 THEN ?3 ELSE ?4 END,
		next_attempt_at = CASE WHEN attempts < ?2 THEN ?1 ELSE next_attempt_at END,
		lease_until = NULL, claim_token = NULL, updated_at = ?1,
		last_error_class = ?5, last_error_code = NULL, last_enhanced_code = NULL,
		last_error = CASE WHEN attempts < ?2 THEN ?6 ELSE ?7 END
	WHERE status = 'SENDING' AND lease_until < ?1
	RETURNING campaign_id, status`

// RecoverLeases applies rule, which core's in-doubt policy made (see
// core.InDoubtPolicy.ExpiredLeases), to every SENDING recipient whose lease
// ended before now, in one transaction: those with fewer than
// rule.RequeueBelow attempts go back to QUEUED due now with the same id (so
// the same Message-ID) and rule.RequeuedError, the others become FAILED
// with rule.HeldError; all get rule.Class, codes cleared, lease and token
// cleared. When nothing has expired it only reads. EINVALID for a rule
// without a class.
func (db *DB) RecoverLeases(ctx context.Context, now time.Time, rule core.ExpiredLeases) (core.LeaseRecovery, error) {
	var out core.LeaseRecovery
	if rule.Class == "" {
		return out, core.Errorf(core.EINVALID, "recover leases: the rule names no error class")
	}
	now = orNow(now)
	var expired bool
	if err := db.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM recipients INDEXED BY recipients_lease
		WHERE status = 'SENDING' AND lease_until < ?)`, ms(now)).Scan(&expired); err != nil {
		return out, internal("recover leases", err)
	}
	if !expired {
		return out, nil
	}
	err := db.writeTx(ctx, "recover leases", func(tx *sql.Tx) error {
		out = core.LeaseRecovery{}
		rows, err := tx.QueryContext(ctx, recoverLeasesSQL, ms(now), rule.RequeueBelow,
			string(core.RecipientQueued), string(core.RecipientFailed),
			string(rule.Class), rule.RequeuedError, rule.HeldError)
		if err != nil {
			return err
		}
		type moved struct{ queued, failed int64 }
		per := map[int64]*moved{}
		var order []int64
		for rows.Next() {
			var id int64
			var st string
			if err := rows.Scan(&id, &st); err != nil {
				rows.Close()
				return err
			}
			m := per[id]
			if m == nil {
				m = &moved{}
				per[id] = m
				order = append(order, id)
			}
			if st == string(core.RecipientQueued) {
				m.queued++
				out.Requeued++
			} else {
				m.failed++
				out.Failed++
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range order {
			m := per[id]
			if _, err := tx.ExecContext(ctx, `UPDATE campaigns SET sending = sending - ?, queued = queued + ?, failed = failed + ?
				WHERE id = ?`, m.queued+m.failed, m.queued, m.failed, id); err != nil {
				return fmt.Errorf("update counters: %w", err)
			}
			n := minuteCounts{failed: m.failed, retried: m.queued}
			if m.failed > 0 {
				n.lastFailure = fmt.Sprintf("%d leases expired: %s %s", m.failed, rule.Class, rule.HeldError)
			}
			if err := bumpMinute(ctx, tx, id, ms(now), n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return core.LeaseRecovery{}, err
	}
	return out, nil
}
