package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/campaignd/campaignd/core"
)

// executeSQL queues a campaign's PENDING rows. The id range and
// +campaign_id (which the planner cannot match to an index) keep it on a
// sequential rowid walk: no index to read, and only the claim index to
// write, appended in order (same time, growing ids).
const executeSQL = `UPDATE recipients
	SET status = 'QUEUED', queued_at = ?1, next_attempt_at = ?1, updated_at = ?1
	WHERE id BETWEEN ?2 AND ?3 AND +campaign_id = ?4 AND status = 'PENDING'`

// Execute, in one immediate transaction, moves every PENDING recipient of
// an ACTIVE campaign to QUEUED (queued_at = next_attempt_at = now) with one
// UPDATE over the campaign's id range, moves the counters and the campaign
// to SENDING, and writes a COMPLETED execution record, which it returns.
// ENOTFOUND for an unknown campaign, ECONFLICT naming the status when it is
// not ACTIVE.
func (db *DB) Execute(ctx context.Context, campaignID int64, by string, now time.Time) (*core.Execution, error) {
	now = fromMS(ms(orNow(now)))
	at := ms(now)
	ex := &core.Execution{CampaignID: campaignID, Status: core.ExecutionCompleted, By: by, At: now}
	err := db.writeTx(ctx, "execute", func(tx *sql.Tx) error {
		var (
			status      string
			first, last sql.NullInt64
			pending     int64
		)
		err := tx.QueryRowContext(ctx, `SELECT status, first_recipient_id, last_recipient_id, pending
			FROM campaigns WHERE id = ?`, campaignID).Scan(&status, &first, &last, &pending)
		if errors.Is(err, sql.ErrNoRows) {
			return errNoCampaign(campaignID)
		}
		if err != nil {
			return err
		}
		if core.CampaignStatus(status) != core.CampaignActive {
			return core.Errorf(core.ECONFLICT, "campaign %d is %s, not ACTIVE: only an ACTIVE campaign can be executed", campaignID, status)
		}
		ex.Queued = 0
		if pending > 0 && first.Valid {
			res, err := tx.ExecContext(ctx, executeSQL, at, first.Int64, last.Int64, campaignID)
			if err != nil {
				return fmt.Errorf("queue recipients: %w", err)
			}
			if ex.Queued, err = res.RowsAffected(); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE campaigns SET status = 'SENDING', paused_from = NULL, updated_at = ?,
			pending = pending - ?, queued = queued + ? WHERE id = ?`, at, ex.Queued, ex.Queued, campaignID); err != nil {
			return fmt.Errorf("update campaign: %w", err)
		}
		return tx.QueryRowContext(ctx, `INSERT INTO executions (campaign_id, status, queued, by_actor, at)
			VALUES (?, 'COMPLETED', ?, ?, ?) RETURNING id`, campaignID, ex.Queued, by, at).Scan(&ex.ID)
	})
	if err != nil {
		return nil, err
	}
	return ex, nil
}

// RecordFailedExecution writes a FAILED execution record naming the cause
// and returns it. ENOTFOUND for an unknown campaign.
func (db *DB) RecordFailedExecution(ctx context.Context, campaignID int64, by string, cause string, now time.Time) (*core.Execution, error) {
	now = fromMS(ms(orNow(now)))
	ex := &core.Execution{CampaignID: campaignID, Status: core.ExecutionFailed, Error: cause, By: by, At: now}
	err := db.writeTx(ctx, "record failed execution", func(tx *sql.Tx) error {
		if _, err := campaignStatus(ctx, tx, campaignID); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO executions (campaign_id, status, queued, error, by_actor, at)
			VALUES (?, 'FAILED', 0, ?, ?, ?) RETURNING id`, campaignID, cause, by, ms(now)).Scan(&ex.ID)
	})
	if err != nil {
		return nil, err
	}
	return ex, nil
}

// Executions returns execution records, newest first, at most limit of
// them (limit <= 0 means 100); campaignID 0 means every campaign's.
// ENOTFOUND for an unknown campaign.
func (db *DB) Executions(ctx context.Context, campaignID int64, limit int) ([]*core.Execution, error) {
	if limit <= 0 {
		limit = 100
	}
	const op = "list executions"
	query := `SELECT id, campaign_id, queued, status, error, by_actor, at FROM executions ORDER BY id DESC LIMIT ?`
	args := []any{limit}
	if campaignID != 0 {
		var one int
		err := db.r.QueryRowContext(ctx, `SELECT 1 FROM campaigns WHERE id = ?`, campaignID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, errNoCampaign(campaignID)
		}
		if err != nil {
			return nil, internal(op, err)
		}
		query = `SELECT id, campaign_id, queued, status, error, by_actor, at FROM executions
			WHERE campaign_id = ? ORDER BY id DESC LIMIT ?`
		args = []any{campaignID, limit}
	}
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []*core.Execution
	for rows.Next() {
		var e core.Execution
		var at int64
		if err := rows.Scan(&e.ID, &e.CampaignID, &e.Queued, &e.Status, &e.Error, &e.By, &at); err != nil {
			return nil, internal(op, err)
		}
		e.At = fromMS(at)
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	return out, nil
}

// claimSQL claims with one statement. The subquery walks the partial
// recipients_claim index from the oldest due entry (campaign_id =, then
// next_attempt_at <=, rowid last), so it reads n index entries however long
// the queue, with no sort.
const claimSQL = `UPDATE recipients
	SET status = 'SENDING', lease_until = ?1, claim_token = ?2, attempts = attempts + 1, updated_at = ?3
	WHERE id IN (SELECT id FROM recipients INDEXED BY recipients_claim
		WHERE campaign_id = ?4 AND status = 'QUEUED' AND next_attempt_at <= ?5
		ORDER BY next_attempt_at, id LIMIT ?6)
	RETURNING ` + recipientCols

// Claim moves at most n due QUEUED recipients of a SENDING campaign
// (oldest due first: next_attempt_at, then id) to SENDING with leaseUntil
// and token, attempts+1, in one UPDATE ... RETURNING plus the counter
// update, in one immediate transaction, and returns them in that order.
// Two claimers, in one process or several, never get the same row. The
// campaign's status is read in the same transaction, so a pause or cancel
// committed before the claim is never overtaken by it: a campaign that is
// not SENDING yields nothing. EINVALID for n < 1, an empty token or a lease
// that does not end after now; ENOTFOUND for an unknown campaign.
func (db *DB) Claim(ctx context.Context, campaignID int64, n int, token string, leaseUntil, now time.Time) ([]*core.Recipient, error) {
	now = orNow(now)
	switch {
	case n < 1:
		return nil, core.Errorf(core.EINVALID, "claim: batch size %d is below 1", n)
	case token == "":
		return nil, core.Errorf(core.EINVALID, "claim: empty claim token")
	case !leaseUntil.After(now):
		return nil, core.Errorf(core.EINVALID, "claim: lease end %s is not after now %s", leaseUntil, now)
	}
	var rs []*core.Recipient
	err := db.writeTx(ctx, "claim batch", func(tx *sql.Tx) error {
		if st, err := campaignStatus(ctx, tx, campaignID); err != nil || st != core.CampaignSending {
			return err
		}
		rows, err := tx.QueryContext(ctx, claimSQL, ms(leaseUntil), token, ms(now), campaignID, ms(now), n)
		if err != nil {
			return err
		}
		if rs, err = scanRecipients(rows); err != nil || len(rs) == 0 {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE campaigns SET queued = queued - ?1, sending = sending + ?1 WHERE id = ?2`,
			len(rs), campaignID)
		return err
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(rs, func(i, j int) bool {
		a, b := rs[i].NextAttemptAt, rs[j].NextAttemptAt
		if a != nil && b != nil && !a.Equal(*b) {
			return a.Before(*b)
		}
		return rs[i].ID < rs[j].ID
	})
	return rs, nil
}

// RecordOutcome applies one outcome in its own short transaction, only if
// the row is still SENDING under o.ClaimToken (and, when o.CampaignID is
// set, in that campaign); otherwise it changes nothing and returns
// ECONFLICT (the lease was taken over). The lease and token are cleared;
// the campaign's counters move from sending to the new status.
//
//   - SENT sets sent_at (o.At) and provider_id.
//   - FAILED and BOUNCED record the error class, code, enhanced code and text.
//   - QUEUED sets next_attempt_at (o.NextAttemptAt, or o.At when zero) and
//     records the error when one is given.
//
// RefundAttempt takes back the attempt the claim counted, whatever the
// status. o.Suppress, when set, puts the address (o.Suppress.Email, or the
// recipient's) on the suppression list in the same transaction. EINVALID
// for any other status or an empty token.
func (db *DB) RecordOutcome(ctx context.Context, o core.Outcome) error {
	switch o.Status {
	case core.RecipientSent, core.RecipientFailed, core.RecipientBounced, core.RecipientQueued:
	default:
		return core.Errorf(core.EINVALID, "record outcome: status %q is not SENT, FAILED, BOUNCED or QUEUED", o.Status)
	}
	if o.ClaimToken == "" {
		return core.Errorf(core.EINVALID, "record outcome: empty claim token")
	}
	at := ms(orNow(o.At))
	var sentAt, providerID, nextAt any
	switch o.Status {
	case core.RecipientSent:
		sentAt, providerID = at, nullString(o.ProviderID)
	case core.RecipientQueued:
		nextAt = at
		if !o.NextAttemptAt.IsZero() {
			nextAt = ms(o.NextAttemptAt)
		}
	}
	setError := 0
	if o.ErrorClass != "" || o.Error != "" || o.ErrorCode != 0 || o.EnhancedCode != "" {
		setError = 1
	}
	var code any
	if o.ErrorCode != 0 {
		code = o.ErrorCode
	}
	refund := 0
	if o.RefundAttempt {
		refund = 1
	}
	return db.writeTx(ctx, "record outcome", func(tx *sql.Tx) error {
		var campaignID int64
		var email string
		err := tx.QueryRowContext(ctx, `UPDATE recipients SET
				status = ?1, updated_at = ?2, lease_until = NULL, claim_token = NULL,
				attempts = max(attempts - ?3, 0),
				sent_at = coalesce(?4, sent_at),
				provider_id = coalesce(?5, provider_id),
				next_attempt_at = coalesce(?6, next_attempt_at),
				last_error_class   = CASE WHEN ?7 THEN ?8  ELSE last_error_class END,
				last_error_code    = CASE WHEN ?7 THEN ?9  ELSE last_error_code END,
				last_enhanced_code = CASE WHEN ?7 THEN ?10 ELSE last_enhanced_code END,
				last_error         = CASE WHEN ?7 THEN ?11 ELSE last_error END
			WHERE id = ?12 AND claim_token = ?13 AND status = 'SENDING' AND (?14 = 0 OR campaign_id = ?14)
			RETURNING campaign_id, email`,
			string(o.Status), at, refund, sentAt, providerID, nextAt,
			setError, nullString(o.ErrorClass), code, nullString(o.EnhancedCode), nullString(o.Error),
			o.RecipientID, o.ClaimToken, o.CampaignID).Scan(&campaignID, &email)
		if errors.Is(err, sql.ErrNoRows) {
			return core.Errorf(core.ECONFLICT,
				"recipient %d is no longer SENDING under this claim (its lease was taken over): outcome %s not recorded", o.RecipientID, o.Status)
		}
		if err != nil {
			return err
		}
		col := statsColumn(o.Status)
		if _, err := tx.ExecContext(ctx, `UPDATE campaigns SET sending = sending - 1, `+col+` = `+col+` + 1 WHERE id = ?`,
			campaignID); err != nil {
			return fmt.Errorf("update counters: %w", err)
		}
		if o.Suppress != nil {
			s := *o.Suppress
			if s.Email == "" {
				s.Email = email
			}
			if s.Source == "" {
				s.Source = "bounce"
			}
			if s.CreatedAt.IsZero() {
				s.CreatedAt = fromMS(at)
			}
			return upsertSuppression(ctx, tx, s)
		}
		return nil
	})
}

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

// DueCampaigns returns, from the read pool, the SENDING campaigns that have
// QUEUED recipients due at now, by id; one index probe per SENDING campaign.
func (db *DB) DueCampaigns(ctx context.Context, now time.Time) ([]*core.Campaign, error) {
	return db.queryCampaigns(ctx, "due campaigns", `SELECT `+campaignCols+` FROM campaigns AS c
		WHERE c.status = 'SENDING' AND c.queued > 0 AND EXISTS (
			SELECT 1 FROM recipients AS r INDEXED BY recipients_claim
			WHERE r.campaign_id = c.id AND r.status = 'QUEUED' AND r.next_attempt_at <= ?)
		ORDER BY c.id`, ms(orNow(now)))
}

// CompleteCampaigns marks COMPLETED every SENDING campaign whose counters
// show no PENDING, QUEUED or SENDING recipient, and returns their ids. When
// there is none it only reads.
func (db *DB) CompleteCampaigns(ctx context.Context, now time.Time) ([]int64, error) {
	const done = `status = 'SENDING' AND pending = 0 AND queued = 0 AND sending = 0`
	var finished bool
	if err := db.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM campaigns WHERE `+done+`)`).Scan(&finished); err != nil {
		return nil, internal("complete campaigns", err)
	}
	if !finished {
		return nil, nil
	}
	var ids []int64
	err := db.writeTx(ctx, "complete campaigns", func(tx *sql.Tx) error {
		ids = nil
		rows, err := tx.QueryContext(ctx, `UPDATE campaigns SET status = 'COMPLETED', paused_from = NULL, updated_at = ?
			WHERE `+done+` RETURNING id`, ms(orNow(now)))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

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
		rows, err := tx.QueryContext(ctx, `SELECT id FROM campaigns WHERE `+left)
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
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
// one walk of its id range, as execute walks it.
const failUnsentSQL = `UPDATE recipients SET status = 'FAILED', updated_at = ?1, next_attempt_at = NULL,
		last_error_class = 'cancelled', last_error = 'not sent: the campaign was cancelled',
		last_error_code = NULL, last_enhanced_code = NULL
	WHERE id BETWEEN ?2 AND ?3 AND +campaign_id = ?4 AND (status = 'PENDING' OR status = 'QUEUED')`

// failUnsent fails campaign id's PENDING and QUEUED recipients inside tx,
// moving the counters with them, and returns how many it failed.
func failUnsent(ctx context.Context, tx *sql.Tx, id int64, now time.Time) (int64, error) {
	var first, last sql.NullInt64
	var pending, queued int64
	if err := tx.QueryRowContext(ctx, `SELECT first_recipient_id, last_recipient_id, pending, queued FROM campaigns WHERE id = ?`,
		id).Scan(&first, &last, &pending, &queued); err != nil {
		return 0, fmt.Errorf("fail unsent recipients: %w", err)
	}
	if !first.Valid || pending+queued == 0 {
		return 0, nil
	}
	res, err := tx.ExecContext(ctx, failUnsentSQL, ms(now), first.Int64, last.Int64, id)
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

// retrySQL requeues FAILED rows through the partial index of FAILED rows.
const retrySQL = `UPDATE recipients INDEXED BY recipients_failed SET
		status = 'QUEUED', attempts = 0, queued_at = ?1, next_attempt_at = ?1, updated_at = ?1,
		lease_until = NULL, claim_token = NULL
	WHERE campaign_id = ?2 AND status = 'FAILED' AND (?3 = '' OR last_error_class = ?3)`

// Retry moves a campaign's FAILED recipients (only those whose last error
// class is errorClass, when it is not empty) back to QUEUED due now with
// attempts reset to 0, keeping their last error for the record, and
// returns how many moved. It walks the partial index of FAILED rows, not
// the campaign. BOUNCED recipients stay bounced. A COMPLETED campaign that
// gets rows back reopens to SENDING in the same transaction. ECONFLICT
// unless the campaign is SENDING, PAUSED or COMPLETED; ENOTFOUND for an
// unknown campaign.
func (db *DB) Retry(ctx context.Context, campaignID int64, errorClass string, now time.Time) (int64, error) {
	at := ms(orNow(now))
	var n int64
	err := db.writeTx(ctx, "retry", func(tx *sql.Tx) error {
		st, err := campaignStatus(ctx, tx, campaignID)
		if err != nil {
			return err
		}
		// Read and reopened in this transaction: a tick completing the
		// campaign, or a cancel, since the caller looked can never leave
		// requeued rows under a COMPLETED or CANCELLED campaign.
		if st != core.CampaignSending && st != core.CampaignPaused && st != core.CampaignCompleted {
			return core.Errorf(core.ECONFLICT, "campaign %d is %s: only a SENDING, PAUSED or COMPLETED campaign's recipients can be requeued", campaignID, st)
		}
		res, err := tx.ExecContext(ctx, retrySQL, at, campaignID, errorClass)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		if st == core.CampaignCompleted {
			_, err = tx.ExecContext(ctx, `UPDATE campaigns SET failed = failed - ?1, queued = queued + ?1,
				status = 'SENDING', updated_at = ?2 WHERE id = ?3`, n, at, campaignID)
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

// Queue summarises, per SENDING or PAUSED campaign (by id), what is due at
// now, waiting for a later attempt, and in flight, and the earliest
// next_attempt_at. It reads counters plus the claim index's entries that
// are not yet due (retries waiting), never the whole queue.
func (db *DB) Queue(ctx context.Context, now time.Time) ([]*core.QueueSummary, error) {
	const op = "queue summary"
	rows, err := db.r.QueryContext(ctx, `SELECT c.id, c.name, c.status, c.queued, c.sending,
			(SELECT count(*) FROM recipients AS r INDEXED BY recipients_claim
				WHERE r.campaign_id = c.id AND r.status = 'QUEUED' AND r.next_attempt_at > ?1),
			(SELECT min(r.next_attempt_at) FROM recipients AS r INDEXED BY recipients_claim
				WHERE r.campaign_id = c.id AND r.status = 'QUEUED')
		FROM campaigns AS c WHERE c.status IN ('SENDING', 'PAUSED') ORDER BY c.id`, ms(orNow(now)))
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []*core.QueueSummary
	for rows.Next() {
		var q core.QueueSummary
		var queued, waiting int64
		var next sql.NullInt64
		if err := rows.Scan(&q.CampaignID, &q.CampaignName, &q.Status, &queued, &q.InFlight, &waiting, &next); err != nil {
			return nil, internal(op, err)
		}
		q.Waiting = waiting
		q.DueNow = max(queued-waiting, 0)
		q.NextAttempt = fromNullMS(next)
		out = append(out, &q)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	return out, nil
}
