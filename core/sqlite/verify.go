package sqlite

import (
	"context"
	"time"

	"github.com/campaignd/campaignd/core"
)

// Audit scans the recipients of one campaign (campaignID > 0) or all, in one
// read-only query, and returns per (campaign, status) the real count and
// the rows breaking each rule; see core.StatusAudit. It costs one pass over
// the rows: about a second per few million on this class of machine.
func (db *DB) Audit(ctx context.Context, campaignID int64, now time.Time, maxAttempts int) ([]core.StatusAudit, error) {
	where, args := "", []any{ms(orNow(now)), maxAttempts}
	if campaignID > 0 {
		where = "WHERE campaign_id = ?"
		args = append(args, campaignID)
	}
	rows, err := db.r.QueryContext(ctx, `SELECT campaign_id, status, count(*),
			total(status = 'SENDING' AND (lease_until IS NULL OR claim_token IS NULL)),
			total(status = 'SENDING' AND lease_until < ?1),
			total(status = 'SENT' AND (provider_id IS NULL OR provider_id = '' OR sent_at IS NULL)),
			total(attempts < 0 OR attempts > ?2),
			total(status = 'QUEUED' AND next_attempt_at IS NULL),
			total(status IN ('FAILED', 'BOUNCED') AND (last_error_class IS NULL OR last_error_class = ''))
		FROM recipients `+where+` GROUP BY campaign_id, status`, args...)
	if err != nil {
		return nil, internal("audit", err)
	}
	defer rows.Close()
	var out []core.StatusAudit
	for rows.Next() {
		var a core.StatusAudit
		var status string
		var noLease, expired, noProof, attempts, noDue, noReason float64
		if err := rows.Scan(&a.CampaignID, &status, &a.Count, &noLease, &expired, &noProof, &attempts, &noDue, &noReason); err != nil {
			return nil, internal("audit", err)
		}
		a.Status = core.RecipientStatus(status)
		a.SendingWithoutLease, a.ExpiredLeases, a.SentWithoutProof = int64(noLease), int64(expired), int64(noProof)
		a.AttemptsOutOfRange, a.QueuedWithoutDue, a.FailedWithoutReason = int64(attempts), int64(noDue), int64(noReason)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("audit", err)
	}
	return out, nil
}
