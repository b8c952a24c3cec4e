package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/campaignd/campaignd/core"
)

// RecoverLeases handles SENDING recipients whose lease ended before now, in
// one transaction: with InDoubtResend ("" means resend) they go back to
// QUEUED due now with the same id (so the same Message-ID), unless they
// already had maxAttempts attempts (maxAttempts <= 0: no limit), in which
// case, as with InDoubtHold, they become FAILED with class in_doubt. Either
// way the lease and token are cleared and the error records that the lease
// expired. When nothing has expired it only reads. EINVALID for an unknown
// policy.
func (db *DB) RecoverLeases(ctx context.Context, now time.Time, policy core.InDoubtPolicy, maxAttempts int) (core.LeaseRecovery, error) {
	var out core.LeaseRecovery
	switch policy {
	case "":
		policy = core.InDoubtResend
	case core.InDoubtResend, core.InDoubtHold:
	default:
		return out, core.Errorf(core.EINVALID, "in-doubt policy %q: must be resend or hold", policy)
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
	limit := maxAttempts
	if policy == core.InDoubtHold {
		limit = 0 // ?2 <= attempts always: every row fails
	} else if limit <= 0 {
		limit = int(^uint32(0) >> 1)
	}
	err := db.writeTx(ctx, "recover leases", func(tx *sql.Tx) error {
		out = core.LeaseRecovery{}
		rows, err := tx.QueryContext(ctx, `UPDATE recipients INDEXED BY recipients_lease SET
				status = CASE WHEN attempts >= ?2 THEN 'FAILED' ELSE 'QUEUED' END,
				next_attempt_at = CASE WHEN attempts >= ?2 THEN next_attempt_at ELSE ?1 END,
				lease_until = NULL, claim_token = NULL, updated_at = ?1,
				last_error_class = 'in_doubt', last_error_code = NULL, last_enhanced_code = NULL,
				last_error = CASE WHEN attempts >= ?2
					THEN 'lease expired during the send: delivery unknown, held for the operator'
					ELSE 'lease expired during the send: delivery unknown, requeued with the same Message-ID' END
			WHERE status = 'SENDING' AND lease_until < ?1
			RETURNING campaign_id, status`, ms(now), limit)
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
		}
		return nil
	})
	if err != nil {
		return core.LeaseRecovery{}, err
	}
	return out, nil
}
