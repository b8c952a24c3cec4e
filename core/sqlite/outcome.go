package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/campaignd/campaignd/core"
)

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
// status; o.Release is not read (a hand-back carries no error, so its last
// error stays). o.Suppress, when set, puts the address (o.Suppress.Email, or the
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
			setError, nullString(string(o.ErrorClass)), code, nullString(o.EnhancedCode), nullString(o.Error),
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
		var n minuteCounts
		switch o.Status {
		case core.RecipientSent:
			n.sent = 1
		case core.RecipientFailed:
			n.failed, n.lastFailure = 1, failureLine(email, o)
		case core.RecipientBounced:
			n.bounced, n.lastFailure = 1, failureLine(email, o)
		case core.RecipientQueued:
			if setError == 1 && o.ErrorClass != core.ClassThrottled {
				n.retried = 1
			}
		}
		if err := bumpMinute(ctx, tx, campaignID, at, n); err != nil {
			return err
		}
		if o.Suppress != nil {
			s := *o.Suppress
			if s.Email == "" {
				s.Email = email
			}
			if s.Source == "" {
				s.Source = core.SourceBounce
			}
			if s.CreatedAt.IsZero() {
				s.CreatedAt = fromMS(at)
			}
			return upsertSuppression(ctx, tx, s)
		}
		return nil
	})
}
