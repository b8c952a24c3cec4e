package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/campaignd/campaignd/core"
)

// Audit reads the campaigns (one, or all) with their counters and scans
// their recipients in one read-only transaction, so that the counters and
// the real counts are of the same moment even while a tick commits: see
// core.Store.Audit and core.StatusAudit. The scan is one pass over the
// rows: about a second per few million on this class of machine.
// ENOTFOUND for an unknown campaign.
func (db *DB) Audit(ctx context.Context, campaignID int64, now time.Time, maxAttempts int) (*core.AuditSnapshot, error) {
	const op = "audit"
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, internal(op, err)
	}
	defer tx.Rollback() // read-only: nothing to undo
	snap := &core.AuditSnapshot{}
	query, cargs := `SELECT `+campaignCols+` FROM campaigns ORDER BY id DESC`, []any{}
	where, args := "", []any{ms(orNow(now)), maxAttempts, core.MaxAttemptsCeiling}
	if campaignID > 0 {
		query, cargs = `SELECT `+campaignCols+` FROM campaigns WHERE id = ?`, []any{campaignID}
		where = "WHERE campaign_id = ?"
		args = append(args, campaignID)
	}
	if snap.Campaigns, err = queryCampaigns(ctx, tx, op, query, cargs...); err != nil {
		return nil, err
	}
	if campaignID > 0 && len(snap.Campaigns) == 0 {
		return nil, errNoCampaign(campaignID)
	}
	rows, err := tx.QueryContext(ctx, `SELECT campaign_id, status, count(*),
			total(status = 'SENDING' AND (lease_until IS NULL OR claim_token IS NULL)),
			total(status = 'SENDING' AND lease_until < ?1),
			total(status = 'SENT' AND (provider_id IS NULL OR provider_id = '' OR sent_at IS NULL)),
			total(attempts < 0 OR attempts > ?3),
			total(attempts > ?2),
			total(status = 'QUEUED' AND next_attempt_at IS NULL),
			total(status IN ('FAILED', 'BOUNCED') AND (last_error_class IS NULL OR last_error_class = '')),
			total(sent_at IS NOT NULL)
		FROM recipients `+where+` GROUP BY campaign_id, status`, args...)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var a core.StatusAudit
		var status string
		var noLease, expired, noProof, attempts, aboveLimit, noDue, noReason, delivered float64
		if err := rows.Scan(&a.CampaignID, &status, &a.Count, &noLease, &expired, &noProof, &attempts, &aboveLimit, &noDue, &noReason, &delivered); err != nil {
			return nil, internal(op, err)
		}
		a.Status = core.RecipientStatus(status)
		a.SendingWithoutLease, a.ExpiredLeases, a.SentWithoutProof = int64(noLease), int64(expired), int64(noProof)
		a.AttemptsOutOfRange, a.AttemptsAboveLimit = int64(attempts), int64(aboveLimit)
		a.QueuedWithoutDue, a.FailedWithoutReason = int64(noDue), int64(noReason)
		a.Delivered = int64(delivered)
		snap.Statuses = append(snap.Statuses, a)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	// The minute table's SENT counts, read in the same transaction: a
	// range of its primary key per campaign.
	mq, margs := `SELECT campaign_id, total(sent) FROM campaign_minutes GROUP BY campaign_id`, []any{}
	if campaignID > 0 {
		mq, margs = `SELECT campaign_id, total(sent) FROM campaign_minutes WHERE campaign_id = ? GROUP BY campaign_id`, []any{campaignID}
	}
	mrows, err := tx.QueryContext(ctx, mq, margs...)
	if err != nil {
		return nil, internal(op, err)
	}
	defer mrows.Close()
	snap.MinuteSent = map[int64]int64{}
	for mrows.Next() {
		var id int64
		var sent float64
		if err := mrows.Scan(&id, &sent); err != nil {
			return nil, internal(op, err)
		}
		snap.MinuteSent[id] = int64(sent)
	}
	if err := mrows.Err(); err != nil {
		return nil, internal(op, err)
	}
	return snap, nil
}
